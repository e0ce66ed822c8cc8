import { FLAVOR_SPECS } from '../../imds/flavors.js';
import { ipToBytes, TCP_STATES, unmapIPv4 } from './proc-parse.js';
import type { SockDiag } from './sock-diag.js';
import type { ConnectionInfo } from './types.js';

/**
 * Finds a client's socket by its exact 4-tuple through sock_diag (the native addon), in the guard's
 * network namespace. The client's own end is (remoteAddress, remotePort) as the guard sees it; its
 * peer is where the client believes it is connected: the guard's own address, or, for a client that
 * iptables or nftables redirected, the metadata address it dialled (its socket keeps the original
 * destination). An IPv4 client is tried as AF_INET, then as a dual-stack AF_INET6 socket
 * (::ffff:a.b.c.d). No answer means "not in this namespace by these tuples": the resolver then reads
 * the /proc tables, which see every case.
 */

/** sock_diag errors that will not go away: the finder stops asking and the resolver reads /proc. */
const PERMANENT = new Set(['EPERM', 'EACCES', 'EPROTONOSUPPORT', 'EAFNOSUPPORT', 'EOPNOTSUPP', 'EINVAL']);

export interface DiagSocket {
  state: number;
  uid: number;
  inode: number;
}

/** A destination as sock_diag wants it: v4 bytes (for an IPv4 address) and v6 bytes (always). */
export interface Endpoint {
  v4?: Uint8Array;
  v6: Uint8Array;
  port: number;
}

/** Every metadata address of every flavor, port 80: where redirected clients think they are. */
export function defaultOriginalDestinations(): string[] {
  const out = new Set<string>();
  for (const spec of Object.values(FLAVOR_SPECS)) {
    for (const a of spec.addresses) out.add(a.includes(':') ? `[${a}]:80` : `${a}:80`);
  }
  return [...out];
}

/** An address as sock_diag wants it for a family: v4 bytes, or v6 (v4 becomes ::ffff:a.b.c.d). */
export function bytesFor(family: 4 | 6, address: string): Uint8Array | undefined {
  const b = ipToBytes(unmapIPv4(address) ?? address);
  if (!b) return undefined;
  if (family === 4) return b.length === 4 ? b : undefined;
  if (b.length === 16) return b;
  const mapped = new Uint8Array(16);
  mapped[10] = 0xff;
  mapped[11] = 0xff;
  mapped.set(b, 12);
  return mapped;
}

/** "1.2.3.4:80" or "[fd00::1]:80" -> endpoint; undefined when it does not parse. */
export function parseEndpoint(text: string): Endpoint | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  const v6 = bytesFor(6, m[1] as string);
  if (!v6 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const v4 = bytesFor(4, m[1] as string);
  return v4 ? { v4, v6, port } : { v6, port };
}

/** Addresses whose bytes DiagFinder keeps (clients and listeners repeat; parsing costs microseconds). */
const MAX_MEMO = 256;

export class DiagFinder {
  readonly stats = { lookups: 0, hits: 0, errors: 0 };
  #diag: SockDiag | undefined;
  /** Why sock_diag stopped being used (a permanent error), for stats. */
  unavailable: string | undefined;
  readonly #destinations: Endpoint[];
  /** The last hit came through an original destination (a redirect), not the guard's address. */
  #viaDestination = false;
  /** bytesFor answers by family and address. */
  readonly #memo = new Map<string, Uint8Array | undefined>();

  /** destinations: "address:port" strings (unparseable ones are ignored). */
  constructor(diag: SockDiag, destinations: readonly string[] = defaultOriginalDestinations()) {
    this.#diag = diag;
    this.#destinations = destinations.flatMap((d) => parseEndpoint(d) ?? []);
  }

  get usable(): boolean {
    return this.#diag !== undefined;
  }

  /** The client's socket, or undefined (not found, or sock_diag failed: the caller reads /proc). */
  find(conn: ConnectionInfo): DiagSocket | undefined {
    const diag = this.#diag;
    if (!diag) return undefined;
    const address = conn.remoteAddress;
    const isV4 = !address.includes(':') || this.#bytes(4, address) !== undefined;
    // A closed socket (TIME_WAIT, no inode) may be an older connection of the same 4-tuple (loopback
    // reuses them at once): kept, and returned only when no live one turns up.
    let closed: DiagSocket | undefined;
    for (const family of isV4 ? ([4, 6] as const) : ([6] as const)) {
      const client = this.#bytes(family, address);
      if (!client) continue;
      for (const [peer, port, viaDestination] of this.#peers(family, conn)) {
        let answer: ReturnType<SockDiag['lookup']>;
        this.stats.lookups++;
        try {
          answer = diag.lookup(family, client, conn.remotePort, peer, port);
        } catch (err) {
          this.stats.errors++;
          if (PERMANENT.has((err as { code?: string }).code ?? '')) {
            this.#diag = undefined;
            this.unavailable = `sock_diag failed: ${(err as Error).message}`;
          }
          return undefined;
        }
        // The kernel falls back to a listener on the port: never a client.
        if (answer === null || answer[0] === TCP_STATES.LISTEN) continue;
        const found = { state: answer[0], uid: answer[1], inode: answer[2] };
        if (found.inode === 0 || found.state === TCP_STATES.TIME_WAIT) {
          closed ??= found;
          continue;
        }
        this.stats.hits++;
        this.#viaDestination = viaDestination;
        return found;
      }
    }
    if (closed) this.stats.hits++;
    return closed;
  }

  #bytes(family: 4 | 6, address: string): Uint8Array | undefined {
    const key = `${family}${address}`;
    if (this.#memo.has(key)) return this.#memo.get(key);
    if (this.#memo.size >= MAX_MEMO) this.#memo.clear();
    const b = bytesFor(family, address);
    this.#memo.set(key, b);
    return b;
  }

  /** Peers to try for a family, in order: [address bytes, port, is an original destination]. */
  #peers(family: 4 | 6, conn: ConnectionInfo): Array<[Uint8Array, number, boolean]> {
    const peers: Array<[Uint8Array, number, boolean]> = [];
    const local = this.#bytes(family, conn.localAddress);
    if (local) peers.push([local, conn.localPort, false]);
    for (const d of this.#destinations) {
      const bytes = family === 4 ? d.v4 : d.v6;
      if (bytes) peers.push([bytes, d.port, true]);
    }
    // A redirected guard sees every client through a redirect: try that first once it has worked.
    if (this.#viaDestination) peers.sort((a, b) => Number(b[2]) - Number(a[2]));
    return peers;
  }
}
