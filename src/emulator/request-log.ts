import type { EmulatorRequestLog } from './index.js';

/** How many requests the emulator remembers (oldest dropped first). */
export const REQUEST_LOG_CAPACITY = 1_000;

/** A bounded ring of request records. */
export class RequestLog {
  private readonly ring: EmulatorRequestLog[] = [];
  private next = 0;

  private readonly capacity: number;

  constructor(capacity: number = REQUEST_LOG_CAPACITY) {
    this.capacity = capacity;
  }

  push(entry: EmulatorRequestLog): void {
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Oldest first; copies, so callers cannot change the log. */
  entries(): EmulatorRequestLog[] {
    const ordered =
      this.ring.length < this.capacity
        ? this.ring
        : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return ordered.map((e) => ({ ...e }));
  }

  clear(): void {
    this.ring.length = 0;
    this.next = 0;
  }
}
