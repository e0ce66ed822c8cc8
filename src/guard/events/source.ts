import { createReadStream } from 'node:fs';
import { type EventFilter, matches } from '../store/port.js';
import type { GuardEvent } from './types.js';

/**
 * Reading the guard's events back, for `imdsguard events`, `callers` and `report`: any
 * AsyncIterable<GuardEvent>. The JSON-lines events file is one source (read here, line by line); the
 * SQLite event store is another (src/guard/store/read.ts). Both are filtered with the store's own
 * predicate, so a filter means the same whichever the source.
 */
export type EventSource = AsyncIterable<GuardEvent>;

export interface JsonlStats {
  /** Non-empty lines read. */
  lines: number;
  /** Lines skipped: not JSON, not a guard event, or longer than maxLineBytes. */
  bad: number;
  /** 1-based line number of the first bad line, for the warning. */
  firstBadLine?: number;
}

export interface JsonlOptions {
  /** Longest line accepted, bytes; longer lines are skipped as bad. Default 1 MiB. */
  maxLineBytes?: number;
}

/**
 * Streams a JSON-lines events file one line at a time (memory bounded by maxLineBytes), skipping and
 * counting bad lines. Throws only when the file cannot be opened or read.
 */
export async function* readEventsJsonl(
  path: string,
  stats: JsonlStats,
  options: JsonlOptions = {},
): AsyncGenerator<GuardEvent> {
  const max = options.maxLineBytes ?? 1024 * 1024;
  let lineNo = 0;
  let parts: Buffer[] = [];
  let partLen = 0;
  let overlong = false;
  const bad = () => {
    stats.bad++;
    stats.firstBadLine ??= lineNo;
  };
  function* finish(line: Buffer): Generator<GuardEvent> {
    lineNo++;
    if (overlong) {
      overlong = false;
      stats.lines++;
      bad();
      return;
    }
    const text = line.toString('utf8').trim();
    if (text === '') return;
    stats.lines++;
    const ev = parseEvent(text);
    if (ev) yield ev;
    else bad();
  }
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (!overlong) {
        if (partLen + piece.length > max) {
          overlong = true;
          parts = [];
          partLen = 0;
        } else if (piece.length > 0) {
          parts.push(piece);
          partLen += piece.length;
        }
      }
      if (nl === -1) break;
      const line = Buffer.concat(parts, partLen);
      parts = [];
      partLen = 0;
      yield* finish(line);
      start = nl + 1;
    }
  }
  if (partLen > 0 || overlong) yield* finish(Buffer.concat(parts, partLen));
}

/** A line is a guard event when it has the fields callers needs; anything else is a bad line. */
export function parseEvent(text: string): GuardEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const e = v as Partial<GuardEvent>;
  if (typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time))) return undefined;
  const r = e.request as Partial<GuardEvent['request']> | undefined;
  if (typeof r !== 'object' || r === null || typeof r.path !== 'string' || typeof r.version !== 'string') {
    return undefined;
  }
  if (e.caller !== undefined && (typeof e.caller !== 'object' || e.caller === null)) return undefined;
  return e as GuardEvent;
}

/** What a filter selects, without paging: limit, order and keyset are the reader's business. */
export type EventSelection = Omit<EventFilter, 'limit' | 'order' | 'after'>;

/** The events of a source that the selection matches (the store's predicate), in the source's order. */
export async function* filterEvents(
  source: EventSource,
  selection: EventSelection,
): AsyncGenerator<GuardEvent> {
  for await (const e of source) if (matches(e, selection)) yield e;
}

/** Newest first; ties by id, as the store orders them. */
function newestFirst(a: GuardEvent, b: GuardEvent): number {
  const d = Date.parse(b.time) - Date.parse(a.time);
  if (d !== 0) return d;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * The `limit` newest events of a source, newest first, as the store's query answers them. Memory
 * stays bounded by twice the limit, whatever the source's length and order (a JSON-lines file is
 * written in the order events complete, not quite in time order).
 */
export async function newestEvents(source: EventSource, limit: number): Promise<GuardEvent[]> {
  if (limit <= 0) return [];
  let kept: GuardEvent[] = [];
  for await (const e of source) {
    kept.push(e);
    if (kept.length >= 2 * limit) kept = kept.sort(newestFirst).slice(0, limit);
  }
  return kept.sort(newestFirst).slice(0, limit);
}
