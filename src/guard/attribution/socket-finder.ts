import { statfsSync } from 'node:fs';
import type { ProcContext } from './context.js';
import { DiagFinder, defaultOriginalDestinations, parseEndpoint } from './diag-find.js';
import { Lru } from './lru.js';
import {
  addressToKernelHex,
  isLoopback,
  pickClientRow,
  TCP_STATES,
  type TcpRow,
  unmapIPv4,
} from './proc-parse.js';
import type { ProcessTable } from './process-table.js';
import { loadSockDiag, type SockDiag } from './sock-diag.js';
import { TableScan } from './table-scan.js';
import type { ConnectionInfo } from './types.js';

/**
 * Step 1 of a lookup: the client's socket (state, owner uid, inode) from its connection. By its
 * exact 4-tuple through sock_diag when the addon is in use; else, or when sock_diag does not see it
 * (another network namespace, a redirect to an unlisted destination), by its local endpoint in
 * /proc/net/tcp or tcp6, then in the tables of other network namespaces.
 */

export interface FoundSocket {
  /** The socket's state, owner uid and inode (from sock_diag or a /proc/net/tcp row). */
  row: Pick<TcpRow, 'state' | 'uid' | 'inode'>;
  /** The network namespace (inode) whose table held the row; undefined for the guard's own. */
  netns?: string;
}

/** How long an address found in no network namespace is not searched for again, milliseconds. */
const NOWHERE_TTL_MS = 2000;

/** The proc filesystem's magic number (statfs f_type). */
const PROC_SUPER_MAGIC = 0x9fa0;

/**
 * Whether `root` is a proc filesystem (/proc, or the host's mounted elsewhere): sock_diag then sees
 * the sockets its tables list. A test's fake tree is not one.
 */
function isProcfs(root: string): boolean {
  try {
    return statfsSync(root).type === PROC_SUPER_MAGIC;
  } catch {
    return false;
  }
}

export interface SocketFinderOptions {
  sockDiag?: SockDiag | false;
  originalDestinations?: string[];
}

export class SocketFinder {
  readonly #ctx: ProcContext;
  readonly #table: ProcessTable;
  /** Exact socket lookups by sock_diag; undefined when the addon is not in use. */
  readonly #diag: DiagFinder | undefined;
  readonly #diagUnavailable: string | undefined;
  /** Ports of the original destinations (metadata addresses): where a redirected client connected. */
  readonly #destinationPorts: Set<number>;
  readonly #tables = new Map<string, TableScan>();
  readonly #addrNetns: Lru<string, string>;
  /** Client addresses found in no namespace, not searched again for NOWHERE_TTL_MS. */
  readonly #addrNowhere: Lru<string, true>;

  constructor(ctx: ProcContext, table: ProcessTable, o: SocketFinderOptions) {
    this.#ctx = ctx;
    this.#table = table;
    let diag: SockDiag | undefined;
    if (o.sockDiag === false) {
      this.#diagUnavailable = 'switched off';
    } else if (o.sockDiag !== undefined) {
      diag = o.sockDiag;
    } else if (isProcfs(ctx.root)) {
      const loaded = loadSockDiag();
      diag = loaded.diag;
      this.#diagUnavailable = loaded.reason;
    } else {
      this.#diagUnavailable = `${ctx.root} is not a proc filesystem (a test's tree)`;
    }
    if (diag) this.#diag = new DiagFinder(diag, o.originalDestinations);
    this.#destinationPorts = new Set(
      (o.originalDestinations ?? defaultOriginalDestinations()).flatMap((d) => parseEndpoint(d)?.port ?? []),
    );
    this.#addrNetns = new Lru(1024, 60_000, ctx.now);
    this.#addrNowhere = new Lru(1024, NOWHERE_TTL_MS, ctx.now);
  }

  /** sock_diag's counters, whether it is in use, and why not. */
  diagState(): {
    stats: { lookups: number; hits: number; errors: number };
    usable: boolean;
    unavailable?: string;
  } {
    const unavailable = this.#diag?.unavailable ?? this.#diagUnavailable;
    return {
      stats: this.#diag?.stats ?? { lookups: 0, hits: 0, errors: 0 },
      usable: this.#diag?.usable ?? false,
      ...(unavailable !== undefined ? { unavailable } : {}),
    };
  }

  /** The socket by its exact 4-tuple (sock_diag, microseconds); undefined when not found or not in use. */
  exact(conn: ConnectionInfo): FoundSocket | undefined {
    const row = this.#diag?.find(conn);
    return row ? { row } : undefined;
  }

  /**
   * The client's row in /proc/net/tcp or tcp6, else in another network namespace's. Used when
   * sock_diag did not find it: a client in another network namespace, a redirect to a destination
   * not in originalDestinations, or no addon.
   */
  async inTables(conn: ConnectionInfo, since: number, deadline: number): Promise<FoundSocket | undefined> {
    const lookups = this.#tableLookups(conn.remoteAddress);
    if (lookups.length === 0) return undefined;
    // An IPv4 client is looked for in tcp, then (dual-stack, mapped) in tcp6. A row in tcp that is
    // closed, or connected elsewhere, may be an older connection from the same port (ports are
    // reused, and TIME_WAIT rows stay for a minute): only a live row connected to the guard (or to an
    // original destination, for a redirect) ends the search; a weaker one is kept in case nothing
    // better turns up.
    let weak: TcpRow | undefined;
    let other: TcpRow | undefined;
    for (const [table, hex] of lookups) {
      const rows = await this.#rows(`${this.#ctx.root}/net/${table}`, since, hex, conn.remotePort);
      const row = pickClientRow(rows, conn.localPort);
      if (!row) continue;
      const live = row.inode !== 0 && row.state !== TCP_STATES.TIME_WAIT;
      const toUs = row.remotePort === conn.localPort || this.#destinationPorts.has(row.remotePort);
      if (live && toUs) return { row };
      // A closed row of this connection (its process exited) beats a row connected elsewhere.
      if (toUs) weak ??= row;
      else other ??= row;
    }
    const best = weak ?? other;
    if (best) return { row: best };
    return this.#elsewhere(conn, lookups, since, deadline);
  }

  /** [table, kernel hex] pairs to search, in order, for a client address. */
  #tableLookups(address: string): Array<['tcp' | 'tcp6', string]> {
    const endian = this.#ctx.settings.endianness;
    const v4 = unmapIPv4(address) ?? (/^\d+\.\d+\.\d+\.\d+$/.test(address) ? address : undefined);
    if (v4 !== undefined) {
      const hex4 = addressToKernelHex(v4, endian);
      const hex6 = addressToKernelHex(`::ffff:${v4}`, endian);
      // An AF_INET client is in tcp; a dual-stack AF_INET6 client (Java, for one) is in tcp6, mapped.
      return hex4 && hex6
        ? [
            ['tcp', hex4],
            ['tcp6', hex6],
          ]
        : [];
    }
    const hex = addressToKernelHex(address, endian);
    return hex ? [['tcp6', hex]] : [];
  }

  /**
   * The rows of a table whose local endpoint is hex:port. A scan of the table is shared by every
   * lookup that started before it did, and stops once each of them has found a live row.
   */
  #rows(path: string, since: number, hex: string, port: number): Promise<TcpRow[]> {
    const cur = this.#tables.get(path);
    if (cur && cur.startedAt >= since && (!cur.finished || cur.complete)) return cur.find(hex, port);
    this.#ctx.counters.tableReads++;
    const scan = new TableScan(path, this.#ctx.now(), this.#ctx.settings.maxTableBytes);
    this.#tables.delete(path);
    this.#tables.set(path, scan);
    // Bounded: one entry per table path (the guard's two plus two per other namespace read).
    while (this.#tables.size > 4 * this.#ctx.settings.maxNetns + 4) {
      const oldest = this.#tables.keys().next();
      if (oldest.done) break;
      this.#tables.delete(oldest.value);
    }
    return scan.find(hex, port);
  }

  /**
   * Callers in other network namespaces (a container bridge with a PREROUTING redirect): their
   * sockets are in their own namespace's table, readable through /proc/PID/net/tcp of any process
   * in that namespace. One representative pid per namespace; the namespace that held this client
   * address last time is tried first.
   */
  async #elsewhere(
    conn: ConnectionInfo,
    lookups: Array<['tcp' | 'tcp6', string]>,
    since: number,
    deadline: number,
  ): Promise<FoundSocket | undefined> {
    const ctx = this.#ctx;
    const table = this.#table;
    const addr = conn.remoteAddress;
    // Loopback never crosses namespaces; an address just searched everywhere in vain is not searched
    // again for a moment (each namespace's table is a full walk).
    if (isLoopback(addr) || this.#addrNowhere.get(addr) !== undefined) return undefined;
    const self = await table.selfNs();
    if (self === undefined) return undefined;
    await table.list(since);
    await table.probeUnprobed(deadline, (e) => e.netns === undefined);
    const reps = new Map<string, number>();
    for (const [pid, e] of table.pids) {
      if (e.netns !== undefined && e.netns !== self && !reps.has(e.netns)) reps.set(e.netns, pid);
    }
    const hint = this.#addrNetns.get(conn.remoteAddress);
    const order = [...reps.keys()]
      .sort((a, b) => Number(b === hint) - Number(a === hint))
      .slice(0, ctx.settings.maxNetns);
    for (const ns of order) {
      if (ctx.now() > deadline) break;
      const rep = reps.get(ns) as number;
      for (const [t, hex] of lookups) {
        const rows = await this.#rows(`${ctx.root}/${rep}/net/${t}`, since, hex, conn.remotePort);
        const row = pickClientRow(rows, conn.localPort);
        if (row) {
          ctx.counters.otherNetnsRows++;
          this.#addrNetns.set(conn.remoteAddress, ns);
          return { row, netns: ns };
        }
      }
    }
    if (ctx.now() <= deadline) this.#addrNowhere.set(addr, true);
    return undefined;
  }
}
