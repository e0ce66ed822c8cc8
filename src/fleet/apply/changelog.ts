/**
 * The change log: one line per action (in addition to the journal), as metabadger writes it:
 * timestamp, change set, change, resource, dry-run and status. JSON Lines or text, to a file or stderr.
 */
import { appendFileSync } from 'node:fs';
import { ImdsguardError } from '../../errors.js';
import type { Output } from '../../io/output.js';

export interface ChangeLogEntry {
  /** ISO 8601 */
  timestamp: string;
  changeSetId: string;
  /** harden, disable, hop-limit, templates, defaults, rollback */
  change: string;
  /** What was called: ModifyInstanceMetadataOptions, CreateLaunchTemplateVersion, ... */
  action: string;
  accountId: string;
  region: string;
  /** Instance id, template id, or ACCOUNT/REGION. */
  resource: string;
  dryRun: boolean;
  /** sent, applied, not-applied, failed, dry-run-ok, dry-run-failed, verified, mismatch, unverified */
  status: string;
  /** The options sent, for instance changes. */
  detail?: string | undefined;
  errorCode?: string | undefined;
  message?: string | undefined;
}

export type ChangeLogFormat = 'json' | 'text';

export interface ChangeLog {
  write(e: ChangeLogEntry): void;
}

export function formatChangeLogLine(e: ChangeLogEntry, format: ChangeLogFormat): string {
  if (format === 'json') return `${JSON.stringify(e)}\n`;
  const parts = [
    e.timestamp,
    e.changeSetId,
    e.change,
    e.action,
    e.accountId,
    e.region,
    e.resource,
    e.dryRun ? 'dry-run' : 'live',
    e.status,
  ];
  if (e.detail) parts.push(e.detail);
  if (e.errorCode) parts.push(`${e.errorCode}: ${(e.message ?? '').replace(/[\r\n]+/g, ' ')}`);
  return `${parts.join(' ')}\n`;
}

/** Appends lines to a file (created 0600 if missing); each line is written at once. */
export function fileChangeLog(path: string, format: ChangeLogFormat): ChangeLog {
  return {
    write(e) {
      try {
        appendFileSync(path, formatChangeLogLine(e, format), { mode: 0o600 });
      } catch (err) {
        throw new ImdsguardError(
          'IMDSGUARD_E_OUTPUT',
          `cannot write the change log ${path}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    },
  };
}

export function streamChangeLog(out: Output, format: ChangeLogFormat): ChangeLog {
  return { write: (e) => void out.write(formatChangeLogLine(e, format)) };
}

export function memoryChangeLog(): ChangeLog & { entries: ChangeLogEntry[] } {
  const entries: ChangeLogEntry[] = [];
  return { entries, write: (e) => void entries.push(e) };
}
