import type { Socket } from 'node:net';

/**
 * Client connections, one request at a time. HTTP/1.1 answers pipelined requests in order; the
 * guard also serves them in order: a request that arrives while another is being served on the same
 * connection waits, and runs only if the connection is still open and kept alive when its turn
 * comes. So nothing pipelined after a response that closes the connection (`Connection: close`, an
 * HTTP/1.0 request, a refusal) ever reaches the upstream, and every request still gets its event.
 * One instance per guard.
 */

interface Waiting {
  run: () => void;
  /** The request will never be served (the connection closed or is closing). */
  drop: () => void;
}

interface Conn {
  busy: boolean;
  /** No further request on this connection is served. */
  closing: boolean;
  queue: Waiting[];
  /** Runs once the request in progress is over (an answer to a later parse error). */
  after: Array<() => void>;
}

export class Connections {
  readonly #conns = new WeakMap<Socket, Conn>();
  readonly #onDropError: (err: unknown) => void;

  /**
   * `onDropError` hears of a `drop` that threw: the other requests waiting on the connection are
   * still dropped (each records its own event), so one failure loses no other request's event.
   */
  constructor(onDropError: (err: unknown) => void = () => {}) {
    this.#onDropError = onDropError;
  }

  #conn(socket: Socket): Conn {
    let c = this.#conns.get(socket);
    if (c === undefined) {
      const conn: Conn = { busy: false, closing: false, queue: [], after: [] };
      c = conn;
      this.#conns.set(socket, conn);
      socket.once('close', () => {
        conn.closing = true;
        this.#drain(conn);
      });
    }
    return c;
  }

  /** Serves a request now, or after the ones before it on its connection; `drop` if never. */
  enter(socket: Socket, run: () => void, drop: () => void): void {
    const c = this.#conn(socket);
    if (c.closing || socket.destroyed) {
      drop();
      return;
    }
    if (c.busy) {
      c.queue.push({ run, drop });
      return;
    }
    c.busy = true;
    run();
  }

  /** The request in progress is over; `keepAlive`: the connection stays open for the next one. */
  leave(socket: Socket, keepAlive: boolean): void {
    const c = this.#conns.get(socket);
    if (c === undefined) return;
    c.busy = false;
    if (!keepAlive || socket.destroyed) c.closing = true;
    for (const f of c.after.splice(0)) f();
    if (c.closing) {
      this.#drain(c);
      return;
    }
    const next = c.queue.shift();
    if (next !== undefined) {
      c.busy = true;
      next.run();
    }
  }

  /** The answer in progress will close this connection: nothing after it is served. */
  closing(socket: Socket): void {
    const c = this.#conn(socket);
    c.closing = true;
    this.#drain(c);
  }

  /**
   * For bytes that are no request (a parse error): runs `f` once the request in progress on this
   * connection is over (at once when there is none), so that its answer does not jump ahead of the
   * one still owed, and serves nothing after it. Returns false, without running `f`, when an answer
   * had already closed the connection: what the client sent after it is ignored, as the service
   * would (it closed the connection too).
   */
  afterCurrent(socket: Socket, f: () => void): boolean {
    const c = this.#conn(socket);
    if (c.closing) return false;
    c.closing = true;
    if (c.busy) c.after.push(f);
    else f();
    this.#drain(c);
    return true;
  }

  #drain(c: Conn): void {
    for (const w of c.queue.splice(0)) {
      try {
        w.drop();
      } catch (err) {
        this.#onDropError(err);
      }
    }
    if (!c.busy) for (const f of c.after.splice(0)) f();
  }
}
