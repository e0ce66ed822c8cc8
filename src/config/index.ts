export { type ConfigFlags, type ConfigSources, loadConfig, parseConfig, readConfigFile } from './load.js';
export * from './schema.js';
