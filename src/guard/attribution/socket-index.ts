/**
 * inode -> (pid, fd): which process held a socket, and under which fd number, as fd scans and probes
 * saw it. Knowing the fd makes a hit cheap to confirm: one readlink of /proc/PID/fd/FD, which fails
 * once the process or the fd is gone and names another socket once the fd was reused.
 *
 * Bounded (least recently used first out); one Map entry of two numbers per socket, no object per
 * entry (pid < 2^22 and fd < 2^30 pack into one integer below 2^53).
 */

const FD_SPAN = 2 ** 30;

export interface SocketOwner {
  pid: number;
  fd: number;
}

export class SocketIndex {
  readonly #max: number;
  readonly #map = new Map<number, number>();

  /** max: sockets remembered (>= 1). */
  constructor(max: number) {
    this.#max = Math.max(1, Math.floor(max));
  }

  get size(): number {
    return this.#map.size;
  }

  get(inode: number): SocketOwner | undefined {
    const v = this.#map.get(inode);
    if (v === undefined) return undefined;
    this.#map.delete(inode);
    this.#map.set(inode, v);
    return { pid: Math.floor(v / FD_SPAN), fd: v % FD_SPAN };
  }

  set(inode: number, pid: number, fd: number): void {
    if (!(fd >= 0 && fd < FD_SPAN && pid > 0 && pid < 2 ** 22)) return;
    this.#map.delete(inode);
    this.#map.set(inode, pid * FD_SPAN + fd);
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
  }

  delete(inode: number): void {
    this.#map.delete(inode);
  }

  clear(): void {
    this.#map.clear();
  }
}
