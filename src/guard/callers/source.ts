import { createReadStream } from 'node:fs';
import type { GuardEvent } from '../events/types.js';

/**
 * Where `imdsguard callers` gets its events: any AsyncIterable<GuardEvent>. The JSON-lines events
 * file is one source; the SQLite event store plugs in as another.
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
