/**
 * The --history FILE / --no-history options of `fleet discover` and `fleet report`, and recording a
 * scan's snapshot. Recording never fails the scan: a history that cannot be written is a warning.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { makeSnapshot, type SnapshotInput } from '../../fleet/history/snapshot.js';
import { appendHistory, defaultHistoryPath } from '../../fleet/history/store.js';
import type { CliContext } from '../context.js';

export function addHistoryOptions(cmd: Command): Command {
  return cmd
    .option(
      '--history <file>',
      'fleet history database (SQLite) (default: IMDSGUARD_FLEET_HISTORY, else ~/.local/share/imdsguard/fleet-history.db)',
    )
    .option('--no-history', 'neither record this scan in the history nor read it');
}

/** The history file for this run, or undefined with --no-history (or when no default can be found). */
export function historyPath(raw: Record<string, unknown>, ctx: CliContext): string | undefined {
  const v = raw['history'];
  if (v === false) return undefined;
  if (typeof v === 'string' && v !== '') return resolve(ctx.cwd, v);
  const d = defaultHistoryPath(ctx.env);
  return d === undefined ? undefined : resolve(ctx.cwd, d);
}

/** Records one snapshot; prints a warning on stderr (and carries on) when the history cannot be written. */
export function recordSnapshot(
  raw: Record<string, unknown>,
  ctx: CliContext,
  input: SnapshotInput,
): string | undefined {
  const path = historyPath(raw, ctx);
  if (path === undefined) return undefined;
  try {
    appendHistory(path, makeSnapshot(input));
    return path;
  } catch (err) {
    ctx.stderr.write(`imdsguard: warning: scan not recorded in the history: ${(err as Error).message}\n`);
    return undefined;
  }
}
