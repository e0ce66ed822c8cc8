import { networkInterfaces } from 'node:os';

/**
 * This host's addresses (in the guard's network namespace), to tell from the socket alone whether a
 * client shares the guard's namespace: a client whose address is one of them is local; a client
 * redirected from a container bridge (or another host) is not. Read from the interfaces lazily, at
 * most once a second on a miss and every 30 s otherwise; loopback addresses are always local.
 */
export class LocalAddresses {
  #set = new Set<string>();
  #readAt = Number.NEGATIVE_INFINITY;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  #read(): void {
    const set = new Set<string>();
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) set.add(a.address.toLowerCase().replace(/%.*$/, ''));
    }
    this.#set = set;
    this.#readAt = this.#now();
  }

  has(address: string): boolean {
    let a = address.toLowerCase();
    if (a.startsWith('::ffff:') && a.includes('.')) a = a.slice(7);
    if (a.startsWith('127.') || a === '::1') return true;
    const t = this.#now();
    if (t - this.#readAt > 30_000) this.#read();
    if (this.#set.has(a)) return true;
    if (t - this.#readAt > 1_000) {
      this.#read();
      return this.#set.has(a);
    }
    return false;
  }
}
