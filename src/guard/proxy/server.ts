import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { LimitsConfig } from '../../config/schema.js';
import { ImdsguardError } from '../../errors.js';
import { http } from '../../net/http.js';
import { bindServer, formatListen, type ListenAddress, listenFailureReason } from '../../net/listen.js';

/**
 * The guard's HTTP servers and their limits. Node's parser settings are chosen here, deliberately
 * (docs/guard.md, "Limits"); everything a limit refuses reaches one of the handlers as an event.
 */

export interface ProxyHandlers {
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  /** An Expect other than 100-continue (node would answer 417 on its own, without an event). */
  onExpectation(req: IncomingMessage, res: ServerResponse): void;
  onClientError(err: NodeJS.ErrnoException, socket: Socket): void;
  onConnect(req: IncomingMessage, socket: Socket): void;
  onUpgrade(req: IncomingMessage, socket: Socket): void;
}

/** Requests served on one client connection before the guard closes it. */
export const MAX_REQUESTS_PER_SOCKET = 1000;

/** Applies the limits a reload may change. */
export function applyLimits(server: Server, l: LimitsConfig): void {
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxConnections = l.maxClientConnections;
  server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
  // No count of node's own: past its count node truncates the header list on some versions and
  // refuses on others. The guard counts the raw list itself (limits.maxHeaderCount, 431); the list
  // stays bounded by maxHeaderSize.
  server.maxHeadersCount = 0;
}

export function createProxyServer(limits: LimitsConfig, h: ProxyHandlers): Server {
  const server = http.createServer(
    {
      // Node counts only the target, names and values against this; the guard counts the whole head
      // (request line, separators, CRLFs) against the same bound, so node's check never fires first
      // for a head the guard would accept.
      maxHeaderSize: limits.maxHeaderBytes,
      // A missing Host is the policy's to refuse (rule host), with an event; node would answer 400
      // on its own.
      requireHostHeader: false,
      // How often node looks for heads and requests past headersTimeout/requestTimeout (slowloris).
      connectionsCheckingInterval: 500,
      // The policy reads the raw list, never node's folded `headers`; a repeated name is refused.
      joinDuplicateHeaders: false,
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
    },
    h.onRequest,
  );
  applyLimits(server, limits);
  server.on('checkExpectation', h.onExpectation);
  server.on('clientError', h.onClientError);
  // A client that half-closes (FIN) after a complete request still gets its answer, as from the
  // metadata service (nc -q, some HTTP/1.0 clients and scripts do it); the answer closes the
  // connection. A request cut by the FIN is a parse error (400); a FIN with nothing pending ends the
  // connection. A client that really goes (reset, or its socket closed before the answer) is gone:
  // 499. Node's default (false) would drop the answer of every half-closed client.
  // (node's own switch, read by its socketOnEnd on Node 22 and 24; not in @types/node)
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.on('connect', h.onConnect);
  server.on('upgrade', h.onUpgrade);
  return server;
}

/**
 * Binds one server per address. IPv6 loopback missing on the host is skipped (with a log line) when
 * other addresses remain; any other failure closes what was bound and throws IMDSGUARD_E_LISTEN.
 */
export async function bindAll(
  addrs: readonly ListenAddress[],
  makeServer: () => Server,
  log: (message: string) => void,
): Promise<{ servers: Server[]; bound: ListenAddress[] }> {
  const servers: Server[] = [];
  const bound: ListenAddress[] = [];
  for (const addr of addrs) {
    const server = makeServer();
    try {
      bound.push(await bindServer(server, addr, { exclusive: true }));
      servers.push(server);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const v6Loopback = isIP(addr.host) === 6 && addr.host === '::1';
      if (v6Loopback && (e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT') && addrs.length > 1) {
        log(`guard: IPv6 loopback is not available, not listening on ${formatListen(addr)}`);
        continue;
      }
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      const why = `${listenFailureReason(e)}${e.code === 'EADDRINUSE' ? ' (another guard or service?)' : ''}`;
      throw new ImdsguardError('IMDSGUARD_E_LISTEN', `guard cannot listen on ${formatListen(addr)}: ${why}`, {
        cause: err,
        hint: 'choose another --listen address or port',
      });
    }
  }
  return { servers, bound };
}
