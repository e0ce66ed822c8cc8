import { open } from 'node:fs/promises';
import { findRowsByLocal, TCP_STATES, type TcpRow } from './proc-parse.js';

/**
 * One streaming read of /proc/net/tcp (or tcp6) shared by several lookups, that stops as soon as
 * every lookup waiting on it has found a live row.
 *
 * The kernel produces the table one page (4 KiB) per read() while it walks its connection hash; on a
 * busy host (thousands of TIME_WAIT rows) the whole walk costs milliseconds and one thread-pool round
 * trip per page. A client's row sits at a random place in the walk, so stopping there halves the
 * cost on average. A lookup may join a scan only if the scan started after the lookup did (so the
 * socket existed when the walk began); a late joiner first searches the text already read.
 */

interface Waiter {
  hex: string;
  port: number;
  matches: TcpRow[];
  resolve: (rows: TcpRow[]) => void;
}

/** A live row: a socket with an owner (inode set), not a listener. Finding one ends the search. */
function isLive(r: TcpRow): boolean {
  return r.inode !== 0 && r.state !== TCP_STATES.LISTEN;
}

export class TableScan {
  readonly startedAt: number;
  /** Complete lines read so far (for late joiners); bounded by maxBytes. */
  #text = '';
  #carry = '';
  #pending: Waiter[] = [];
  #finished = false;
  /** True when the scan reached the end of the table (its text is the whole table). */
  complete = false;

  readonly path: string;
  readonly #maxBytes: number;
  readonly #chunkBytes: number;

  /** Starts reading at once. maxBytes bounds the read (bytes); chunkBytes is one read() request. */
  constructor(path: string, startedAt: number, maxBytes: number, chunkBytes = 256 * 1024) {
    this.path = path;
    this.startedAt = startedAt;
    this.#maxBytes = maxBytes;
    this.#chunkBytes = chunkBytes;
    void this.#run();
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Rows whose local endpoint is hex:port; resolves early once a live one is seen. */
  find(hex: string, port: number): Promise<TcpRow[]> {
    const matches = findRowsByLocal(this.#text, hex, port);
    if (matches.some(isLive) || this.#finished) return Promise.resolve(matches);
    return new Promise((resolve) => {
      this.#pending.push({ hex, port, matches, resolve });
    });
  }

  async #run(): Promise<void> {
    let fh: Awaited<ReturnType<typeof open>> | undefined;
    try {
      fh = await open(this.path, 'r');
      let total = 0;
      for (;;) {
        // Nobody is waiting any more (every lookup found its row): stop the walk here.
        if (this.#pending.length === 0 && total > 0) break;
        const want = Math.min(this.#chunkBytes, this.#maxBytes - total);
        if (want <= 0) break;
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await fh.read(buf, 0, want, null);
        if (bytesRead === 0) {
          this.complete = true;
          break;
        }
        total += bytesRead;
        const chunk = this.#carry + buf.toString('latin1', 0, bytesRead);
        const nl = chunk.lastIndexOf('\n');
        const lines = nl === -1 ? '' : chunk.slice(0, nl + 1);
        this.#carry = nl === -1 ? chunk : chunk.slice(nl + 1);
        if (lines !== '') this.#feed(lines);
      }
      if (this.complete && this.#carry !== '') this.#feed(`${this.#carry}\n`);
    } catch {
      // A namespace's process exited, or the table is not readable: to us it has no such row.
    } finally {
      fh?.close().catch(() => {});
      this.#finish();
    }
  }

  #feed(lines: string): void {
    this.#text += lines;
    const still: Waiter[] = [];
    for (const w of this.#pending) {
      const found = findRowsByLocal(lines, w.hex, w.port);
      if (found.length > 0) w.matches.push(...found);
      if (found.some(isLive)) w.resolve(w.matches);
      else still.push(w);
    }
    this.#pending = still;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const w of this.#pending) w.resolve(w.matches);
    this.#pending = [];
  }
}
