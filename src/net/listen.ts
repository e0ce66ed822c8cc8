import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { ImdsguardError } from '../errors.js';

/** A listen address; parsed from HOST:PORT by parseListen, printed by formatListen. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses HOST:PORT, [V6]:PORT or :PORT (loopback). Port 0 asks the OS for a free port. */
export function parseListen(value: string, option = '--listen'): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `${option}: expected HOST:PORT or [IPV6]:PORT, got "${value}"`,
    );
  }
  const host = m[1] ?? (m[2] === '' || m[2] === undefined ? '127.0.0.1' : m[2]);
  const port = Number(m[3]);
  if (port > 65535)
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `${option}: port ${port} is out of range 0..65535`);
  if (m[1] !== undefined && isIP(host) !== 6) {
    throw new ImdsguardError('IMDSGUARD_E_USAGE', `${option}: "${host}" is not an IPv6 address`);
  }
  return { host, port };
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and "localhost" (brackets allowed around IPv6). */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const h = host.replace(/^\[|\]$/g, '');
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./i.test(h);
  return false;
}

export function formatListen(addr: ListenAddress): string {
  return isIP(addr.host) === 6 ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

/** Why a bind failed, for a person: "address already in use", "permission denied (...)". */
export function listenFailureReason(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'address already in use';
    case 'EADDRNOTAVAIL':
      return 'address not available on this host';
    case 'EACCES':
      return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)';
    default:
      return err.message ?? String(err);
  }
}

export interface BindOptions {
  /** Do not share the port with cluster workers. */
  exclusive?: boolean;
  /** For an IPv6 host: accept IPv6 only (no IPv4-mapped dual stack). */
  ipv6Only?: boolean;
}

/**
 * Listens on addr and resolves with the address actually bound (port 0 picks one). Rejects with the
 * socket error as it came (e.g. EADDRINUSE); callers turn it into their IMDSGUARD_E_LISTEN.
 */
export function bindServer(
  server: Server,
  addr: ListenAddress,
  opts: BindOptions = {},
): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : addr);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host: addr.host, port: addr.port, ...opts });
  });
}
