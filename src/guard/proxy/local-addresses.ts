import { networkInterfaces } from 'node:os';
import { isLoopbackHost } from '../../net/listen.js';

/**
 * Whether a client is remote: it arrived on a non-loopback address of the guard (a listener on
 * 0.0.0.0 or on an interface's address, allowed by guard.allowRemoteListen) and its own address is
 * not one of this host's. A process on this host connecting to the host's own address is local (its
 * source is that address); a container or pod whose traffic the host redirects to the guard (DNAT or
 * REDIRECT to 127.0.0.1, as `install` and the Kubernetes manifests set up) arrives on a loopback
 * address and is local too, whatever its source. Pure.
 */
export function isRemoteClient(localAddress: string, clientIsHostAddress: boolean): boolean {
  if (clientIsHostAddress) return false;
  // no local address: the socket is already gone; it cannot be judged remote
  if (localAddress === '') return false;
  return !isLoopbackHost(localAddress.replace(/%.*$/, ''));
}

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
