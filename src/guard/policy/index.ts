export { compilePolicy } from './compile.js';
export { DEFAULT_ALLOWED_USER_AGENTS, DEFAULT_AUTH_HEADER } from './defaults.js';
export { HEADER_RULES, isHeaderAllowedSecretRead } from './header-reads.js';
export { compilePattern, compilePatterns } from './match.js';
export { applyMode, type ModeOutcome, protocolDeny } from './mode.js';
export type { DecidedBy, Decision, Policy } from './types.js';
