export { compilePolicy } from './compile.js';
export { DEFAULT_ALLOWED_USER_AGENTS, DEFAULT_AUTH_HEADER } from './defaults.js';
export { compilePattern, compilePatterns } from './match.js';
export type { Decision, Policy } from './types.js';
