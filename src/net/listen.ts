import type { Server } from 'node:http';
import type { ListenAddress } from '../cli/options.js';

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
