/**
 * Where `imdsguard events`, `callers` and `report` read the guard's events, defined once:
 *
 *   --events <file>   the guard's JSON-lines events (its --events output, rotated files too)
 *   --db <file>       its SQLite event store (default: IMDSGUARD_DB, else /var/lib/imdsguard/events.db)
 *
 * Both give the same events and take the same filters (src/guard/events/source.ts). The store is
 * loaded only when a store is read.
 */
import type { Command } from 'commander';
import { ImdsguardError } from '../errors.js';
import {
  type EventSelection,
  type EventSource,
  filterEvents,
  type JsonlStats,
  newestEvents,
  readEventsJsonl,
} from '../guard/events/source.js';
import type { GuardEvent } from '../guard/events/types.js';
import type { Output } from '../io/output.js';

/** Where the guard keeps its event store when --db and IMDSGUARD_DB are not given. */
export const DEFAULT_EVENTS_DB = '/var/lib/imdsguard/events.db';

export interface EventsSourceFlags {
  events?: string;
  db?: string;
}

/** Adds --events <file> and --db <file>. */
export function addEventsSourceOptions(cmd: Command): Command {
  return cmd
    .option('--events <file>', "read the guard's JSON-lines events file (its --events output)")
    .option(
      '--db <file>',
      `read the guard's SQLite event store (default: IMDSGUARD_DB, else ${DEFAULT_EVENTS_DB})`,
    );
}

/** The events a command reads: one file, of one kind. */
export class EventsInput {
  /** Lines read and skipped (a JSON-lines file; zero for a store). */
  readonly stats: JsonlStats = { lines: 0, bad: 0 };

  readonly kind: 'file' | 'db';
  readonly path: string;
  /** Whether the path was given (--events, --db or IMDSGUARD_DB) rather than the default. */
  private readonly given: boolean;
  private readonly command: string;

  constructor(kind: 'file' | 'db', path: string, given: boolean, command: string) {
    this.kind = kind;
    this.path = path;
    this.given = given;
    this.command = command;
  }

  /** The events the selection matches, oldest first as recorded. */
  async *read(selection: EventSelection = {}): EventSource {
    try {
      if (this.kind === 'file') {
        yield* filterEvents(readEventsJsonl(this.path, this.stats), selection);
        return;
      }
      const { readEventsFromStore } = await import('../guard/store/read.js');
      yield* readEventsFromStore(this.path, selection);
    } catch (err) {
      throw this.readError(err);
    }
  }

  /** The `limit` newest events the selection matches, newest first. */
  async newest(selection: EventSelection, limit: number): Promise<GuardEvent[]> {
    if (this.kind === 'file') {
      try {
        return await newestEvents(filterEvents(readEventsJsonl(this.path, this.stats), selection), limit);
      } catch (err) {
        throw this.readError(err);
      }
    }
    const { SqliteEventStore } = await import('../guard/store/sqlite.js');
    const store = new SqliteEventStore({ path: this.path, readonly: true });
    try {
      return await store.query({ ...selection, limit, order: 'desc' });
    } finally {
      await store.close();
    }
  }

  /** Says on stderr how many lines of the file were not events (once the file was read). */
  warnBadLines(stderr: Output): void {
    const { bad, firstBadLine } = this.stats;
    if (bad === 0) return;
    stderr.write(
      `warning: skipped ${bad} bad line${bad === 1 ? '' : 's'} in ${this.path} (first at line ${firstBadLine})\n`,
    );
  }

  private readError(err: unknown): unknown {
    if (err instanceof ImdsguardError) return err;
    return new ImdsguardError('IMDSGUARD_E_CONFIG_READ', `${this.command}: cannot read ${this.path}`, {
      cause: err,
      hint: this.given
        ? 'check the path and that this user may read it'
        : "pass --events <file> (the guard's JSON-lines events) or --db <file> (its event store)",
    });
  }
}

/**
 * The input the flags name: --events <file>, else --db <file>, else IMDSGUARD_DB, else the default
 * store. Both flags at once are a usage error.
 */
export function eventsInput(
  flags: EventsSourceFlags,
  env: Readonly<Record<string, string | undefined>>,
  command: string,
): EventsInput {
  if (flags.events !== undefined && flags.db !== undefined) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `${command}: give --events or --db, not both`, {
      hint: "--events reads the guard's JSON-lines file, --db its SQLite store",
    });
  }
  if (flags.events !== undefined) return new EventsInput('file', flags.events, true, command);
  const fromEnv = env['IMDSGUARD_DB'];
  const db = flags.db ?? (fromEnv === '' ? undefined : fromEnv);
  return new EventsInput('db', db ?? DEFAULT_EVENTS_DB, db !== undefined, command);
}
