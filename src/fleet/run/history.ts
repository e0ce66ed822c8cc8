/**
 * Recording a scan in the fleet history. Recording never fails the scan: a history that cannot be
 * written is a warning on io.output.
 */
import { makeSnapshot, type SnapshotInput } from '../history/snapshot.js';
import { appendHistory, defaultHistoryPath } from '../history/store.js';
import type { RunIo } from './io.js';
import type { Env } from './session.js';

/**
 * Where the history is: `option` false (--no-history) means nowhere; a non-empty string is the path;
 * otherwise the default for `env` (undefined when there is none). Relative paths are taken from `cwd`.
 */
export function historyPathFor(
  option: string | false | undefined,
  env: Env,
  resolvePath: (p: string) => string,
): string | undefined {
  if (option === false) return undefined;
  if (typeof option === 'string' && option !== '') return resolvePath(option);
  const d = defaultHistoryPath(env);
  return d === undefined ? undefined : resolvePath(d);
}

/** Records one snapshot in `path`; prints a warning (and carries on) when it cannot be written. */
export function recordSnapshot(
  path: string | undefined,
  io: Pick<RunIo, 'output'>,
  input: SnapshotInput,
): string | undefined {
  if (path === undefined) return undefined;
  try {
    appendHistory(path, makeSnapshot(input));
    return path;
  } catch (err) {
    io.output.write(`imdsguard: warning: scan not recorded in the history: ${(err as Error).message}\n`);
    return undefined;
  }
}
