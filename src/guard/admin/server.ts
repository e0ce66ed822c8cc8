import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { ImdsguardError } from '../../errors.js';
import { http } from '../../net/http.js';
import { bindServer, isLoopbackHost } from '../../net/listen.js';
import { CONTENT_TYPE } from '../metrics/registry.js';

/**
 * The admin endpoint: GET /healthz (the process is up), GET /readyz (the guard is ready and the
 * spool is writable), GET /metrics (Prometheus text). It listens on loopback only: the metrics name
 * executables and users, and nothing here is authenticated.
 */
export interface AdminServerOptions {
  host: string;
  port: number;
  /** The Prometheus text for /metrics. */
  metrics: () => string;
  /** Readiness checks: every one must be true for /readyz to answer 200. */
  checks: Record<string, () => boolean>;
  /** Per request, milliseconds. */
  requestTimeoutMs?: number;
}

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Refuses a non-loopback admin address (IMDSGUARD_E_CONFIG), naming the config path. */
export function assertLoopback(host: string, path = 'admin.listen'): void {
  if (!isLoopbackHost(host)) {
    throw new ImdsguardError(
      'IMDSGUARD_E_CONFIG',
      `${path}: the admin endpoint listens on loopback only, got "${host}"`,
      {
        hint: 'use 127.0.0.1:PORT or [::1]:PORT; put a reverse proxy in front if metrics must leave the host',
      },
    );
  }
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  assertLoopback(opts.host);
  const server: Server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    try {
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const failed = Object.entries(opts.checks)
          .filter(([, check]) => {
            try {
              return !check();
            } catch {
              return true;
            }
          })
          .map(([name]) => name);
        const ready = failed.length === 0;
        res
          .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(`${JSON.stringify({ ready, failed })}\n`);
      } else if (path === '/metrics') {
        res.writeHead(200, { 'content-type': CONTENT_TYPE }).end(opts.metrics());
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    } catch (err) {
      res
        .writeHead(500, { 'content-type': 'text/plain' })
        .end(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  });
  server.requestTimeout = opts.requestTimeoutMs ?? 10_000;
  server.headersTimeout = Math.min(server.requestTimeout, 10_000);
  server.maxHeadersCount = 50;
  let port: number;
  try {
    port = (await bindServer(server, { host: opts.host, port: opts.port })).port;
  } catch (err) {
    throw new ImdsguardError(
      'IMDSGUARD_E_LISTEN',
      `admin endpoint cannot listen on ${opts.host}:${opts.port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const host = isIP(opts.host) === 6 ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
