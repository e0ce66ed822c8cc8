export {
  type ConfigFlags,
  type ConfigSources,
  loadConfig,
  loadConfigWithOrigins,
  parseConfig,
  readConfigFile,
  type SettingOrigins,
} from './load.js';
export { describeOrigins } from './origins.js';
export * from './schema.js';
