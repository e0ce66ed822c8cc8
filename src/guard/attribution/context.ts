import type { Settings } from './options.js';
import type { ProcIo } from './proc-io.js';
import type { Counters } from './stats.js';

/** What every part of one resolver shares: where /proc is, how it is read, its clock, its bounds. */
export interface ProcContext {
  /** Root of the proc filesystem, without a trailing slash. */
  readonly root: string;
  readonly io: ProcIo;
  readonly now: () => number;
  /** The inline tier (see ProcResolverOptions.inline): only what costs microseconds. */
  readonly inline: boolean;
  readonly settings: Settings;
  readonly counters: Counters;
  /** True once the resolver is closed. */
  closed(): boolean;
}

/** What a scan of a process that no longer exists fails with. */
export const GONE = Object.assign(new Error('process gone'), { code: 'ENOENT' });
