import { connect, type Socket } from 'node:net';

/**
 * A raw HTTP/1.x client and parser for adversarial tests: it sends exactly the bytes it is given and
 * keeps exactly the bytes it gets back, and parses them with no forgiveness (header names keep their
 * casing and order, duplicates stay duplicates). Nothing here normalizes anything.
 */

export type Header = readonly [name: string, value: string];

export interface ParsedMessage {
  /** The first line, without CRLF. */
  startLine: string;
  /** Every header line as sent: name exactly as written (casing, and any whitespace before ':'), value trimmed. */
  headers: Header[];
  /** The head's bytes, start line through the empty line. */
  head: Buffer;
  body: Buffer;
  /** False when the bytes ended before the message did. */
  complete: boolean;
}

export interface ParsedRequest extends ParsedMessage {
  method: string;
  target: string;
  version: string;
}

export interface ParsedResponse extends ParsedMessage {
  version: string;
  status: number;
  reason: string;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Value of the first header named `name` (case-insensitive), or undefined. */
export function headerValue(headers: readonly Header[], name: string): string | undefined {
  const n = name.toLowerCase();
  return headers.find(([k]) => k.toLowerCase() === n)?.[1];
}

/** Every value of the headers named `name` (case-insensitive), in order. */
export function headerValues(headers: readonly Header[], name: string): string[] {
  const n = name.toLowerCase();
  return headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

function parseHead(head: Buffer): { startLine: string; headers: Header[] } {
  // latin1: one char per byte, so nothing is lost or merged
  const lines = head.toString('latin1').split('\r\n');
  const startLine = lines.shift() ?? '';
  const headers: Header[] = [];
  for (const line of lines) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon === -1) headers.push([line, '']);
    else headers.push([line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')]);
  }
  return { startLine, headers };
}

/** Reads a chunked body from buf at offset; returns its decoded bytes and the end offset, or undefined when incomplete. */
function readChunked(buf: Buffer, offset: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  let at = offset;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol === -1) return undefined;
    const size = Number.parseInt(buf.subarray(at, eol).toString('latin1').split(';')[0] ?? '', 16);
    if (!Number.isFinite(size)) return undefined;
    at = eol + 2;
    if (size === 0) {
      // trailers until an empty line
      for (;;) {
        const t = buf.indexOf('\r\n', at);
        if (t === -1) return undefined;
        const empty = t === at;
        at = t + 2;
        if (empty) return { body: Buffer.concat(parts), end: at };
      }
    }
    if (buf.length < at + size + 2) return undefined;
    parts.push(buf.subarray(at, at + size));
    at += size + 2;
  }
}

function framing(headers: readonly Header[]): { chunked: boolean; length?: number } {
  const te = headerValues(headers, 'transfer-encoding').join(',').toLowerCase();
  if (/(^|,)\s*chunked\s*$/.test(te)) return { chunked: true };
  const cl = headerValue(headers, 'content-length');
  if (cl !== undefined && /^\d+$/.test(cl)) return { chunked: false, length: Number(cl) };
  return { chunked: false };
}

/**
 * Reads the body of `msg` from buf at offset `at` by its framing headers; sets msg.body and
 * msg.complete and returns where the next message starts (buf.length when the bytes ran out).
 * `unframed`: a message without framing has no body (requests), or runs to the end of the bytes and
 * is complete once the connection closed (responses: 'to-close', or 'to-close-pending' while open).
 */
function readBody(
  buf: Buffer,
  at: number,
  msg: ParsedMessage,
  unframed: 'none' | 'to-close' | 'to-close-pending',
): number {
  const f = framing(msg.headers);
  if (f.chunked) {
    const c = readChunked(buf, at);
    if (!c) {
      msg.body = buf.subarray(at);
      msg.complete = false;
      return buf.length;
    }
    msg.body = c.body;
    return c.end;
  }
  if (f.length !== undefined) {
    msg.body = buf.subarray(at, at + f.length);
    if (msg.body.length < f.length) msg.complete = false;
    return at + f.length;
  }
  if (unframed === 'none') return at;
  msg.body = buf.subarray(at);
  msg.complete = unframed === 'to-close';
  return buf.length;
}

/**
 * Splits bytes received by a server into requests (Content-Length or chunked bodies; no framing
 * header means no body). A trailing partial request is returned with complete: false.
 */
export function parseRequests(buf: Buffer): ParsedRequest[] {
  const out: ParsedRequest[] = [];
  let at = 0;
  while (at < buf.length) {
    // tolerate the empty lines RFC 9112 2.2 allows before a request line
    while (buf[at] === 0x0d && buf[at + 1] === 0x0a) at += 2;
    if (at >= buf.length) break;
    const end = buf.indexOf(CRLFCRLF, at);
    const headEnd = end === -1 ? buf.length : end + 4;
    const head = buf.subarray(at, headEnd);
    const { startLine, headers } = parseHead(head);
    const [method = '', target = '', version = ''] = startLine.split(' ');
    const msg: ParsedRequest = {
      startLine,
      headers,
      head,
      body: Buffer.alloc(0),
      complete: end !== -1,
      method,
      target,
      version,
    };
    out.push(msg);
    if (end === -1) break;
    at = headEnd;
    at = readBody(buf, at, msg, 'none');
  }
  return out;
}

/**
 * Splits bytes received by a client into responses. `headRequests[i]` says whether the i-th
 * final (non-1xx) response answers a HEAD (no body whatever Content-Length says). A response without framing runs
 * to the end of the bytes and is complete only once the connection closed (opts.closed).
 */
export function parseResponses(
  buf: Buffer,
  opts: { headRequests?: readonly boolean[]; closed?: boolean } = {},
): ParsedResponse[] {
  const headRequests = opts.headRequests ?? [];
  const out: ParsedResponse[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf(CRLFCRLF, at);
    const headEnd = end === -1 ? buf.length : end + 4;
    const head = buf.subarray(at, headEnd);
    const { startLine, headers } = parseHead(head);
    const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(startLine);
    const msg: ParsedResponse = {
      startLine,
      headers,
      head,
      body: Buffer.alloc(0),
      complete: end !== -1 && m !== null,
      version: m?.[1] ?? '',
      status: m ? Number(m[2]) : 0,
      reason: m?.[3] ?? '',
    };
    const isHead = headRequests[out.filter((r) => r.status >= 200).length] === true;
    out.push(msg);
    if (end === -1 || !m) break;
    at = headEnd;
    if (isHead || msg.status < 200 || msg.status === 204 || msg.status === 304) continue;
    at = readBody(buf, at, msg, opts.closed === true ? 'to-close' : 'to-close-pending');
  }
  return out;
}

/** How a raw connection ended, from the client's side. */
export type RawEnd = 'open' | 'closed' | 'reset';

/** One raw TCP connection: write exact bytes, keep every byte received, wait on events (no sleeps). */
export class RawConnection {
  readonly socket: Socket;
  private chunks: Buffer[] = [];
  private waiters: Array<() => void> = [];
  end: RawEnd = 'open';
  error: string | undefined;
  readonly connected: Promise<void>;
  readonly closed: Promise<RawEnd>;

  constructor(host: string, port: number) {
    this.socket = connect({ host, port });
    this.socket.setNoDelay(true);
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.connected.catch(() => {});
    this.socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.wake();
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err.code ?? err.message;
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') this.end = 'reset';
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('close', () => {
        if (this.end === 'open') this.end = 'closed';
        this.wake();
        resolve(this.end);
      });
    });
  }

  static async open(host: string, port: number): Promise<RawConnection> {
    const c = new RawConnection(host, port);
    await c.connected;
    return c;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Every byte received so far. */
  received(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Writes bytes (a string is sent as latin1: one byte per char, so any byte can be written). */
  write(data: string | Buffer): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) {
        resolve();
        return;
      }
      this.socket.write(b, () => resolve());
    });
  }

  /** Half-closes (FIN) the client's side. */
  finish(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves when check(received) holds or the connection closed; rejects after timeoutMs. */
  async until(check: (received: Buffer) => boolean, timeoutMs: number, what = 'data'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.received())) {
      if (this.end !== 'open') return;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`raw connection: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits until the server closes the connection; rejects after timeoutMs. */
  async untilClosed(timeoutMs: number): Promise<RawEnd> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`raw connection: not closed within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Whether `buf` holds at least n complete final (non-1xx) responses. */
export function hasResponses(buf: Buffer, n: number, headRequests: readonly boolean[] = []): boolean {
  const finals = parseResponses(buf, { headRequests }).filter((x) => x.status === 0 || x.status >= 200);
  return finals.length >= n && finals.slice(0, n).every((x) => x.complete);
}

/** Builds a request head from parts: CRLF line ends, one empty line at the end. */
export function requestHead(startLine: string, headers: ReadonlyArray<readonly [string, string]>): string {
  let s = `${startLine}\r\n`;
  for (const [k, v] of headers) s += `${k}: ${v}\r\n`;
  return `${s}\r\n`;
}
