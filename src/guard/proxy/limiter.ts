/**
 * Bounds concurrent upstream connections. Requests beyond `max` wait in a FIFO queue of at most
 * `maxQueue` entries; a full queue refuses at once, and a waiter gives up after `waitMs`.
 */
export class UpstreamLimiter {
  #active = 0;
  readonly #queue: Array<{ run: () => void; timer: NodeJS.Timeout }> = [];

  max: number;
  maxQueue: number;
  waitMs: number;

  constructor(max: number, maxQueue: number, waitMs: number) {
    this.max = max;
    this.maxQueue = maxQueue;
    this.waitMs = waitMs;
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Runs `run` now or when a slot frees. Returns false when the queue is full (run is not called).
   * `onTimeout` is called instead of `run` when the wait exceeds waitMs. The returned cancel function
   * removes a queued waiter (client went away).
   */
  acquire(run: () => void, onTimeout: () => void): false | (() => void) {
    if (this.#active < this.max) {
      this.#active++;
      run();
      return noop;
    }
    if (this.#queue.length >= this.maxQueue) return false;
    const entry = {
      run,
      timer: setTimeout(() => {
        const i = this.#queue.indexOf(entry);
        if (i !== -1) this.#queue.splice(i, 1);
        onTimeout();
      }, this.waitMs),
    };
    this.#queue.push(entry);
    return () => {
      const i = this.#queue.indexOf(entry);
      if (i !== -1) {
        this.#queue.splice(i, 1);
        clearTimeout(entry.timer);
      }
    };
  }

  release(): void {
    const next = this.#queue.shift();
    if (next) {
      clearTimeout(next.timer);
      next.run();
    } else this.#active--;
  }
}

function noop(): void {}
