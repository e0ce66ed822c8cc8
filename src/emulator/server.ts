import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { ImdsguardError } from '../errors.js';
import { http } from '../net/http.js';
import { bindServer, formatListen, type ListenAddress, listenFailureReason } from '../net/listen.js';

/**
 * HTTP plumbing shared by the metadata listeners and the admin listener: bounded servers, and
 * listen/close helpers that turn socket errors into IMDSGUARD_E_LISTEN.
 */

/** Limits of every emulator socket. Units in the names. */
export const SERVER_LIMITS = {
  /** Largest request head accepted (node answers 431 beyond it). */
  maxHeaderBytes: 16_384,
  /** Request bodies are read and discarded up to this size; larger requests get 413 and are closed. */
  maxBodyBytes: 65_536,
  /** Time to receive the whole request head. */
  headersTimeoutMs: 5_000,
  /** Time to receive the whole request. */
  requestTimeoutMs: 10_000,
  /** Idle socket timeout. */
  socketTimeoutMs: 15_000,
  /** Simultaneous connections per listener. */
  maxConnections: 1_024,
} as const;

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createBoundedServer(handler: RequestHandler): Server {
  const server = http.createServer(
    {
      maxHeaderSize: SERVER_LIMITS.maxHeaderBytes,
      headersTimeout: SERVER_LIMITS.headersTimeoutMs,
      requestTimeout: SERVER_LIMITS.requestTimeoutMs,
      keepAliveTimeout: 1_000,
    },
    handler,
  );
  server.maxConnections = SERVER_LIMITS.maxConnections;
  server.setTimeout(SERVER_LIMITS.socketTimeoutMs, (socket) => socket.destroy());
  return server;
}

/**
 * Reads the request body up to `limit` bytes. Resolves with the body, or undefined when it was too
 * large (the caller answers 413 and closes).
 */
export function readBody(
  req: IncomingMessage,
  limit: number = SERVER_LIMITS.maxBodyBytes,
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (v: Buffer | undefined) => {
      if (done) return;
      done = true;
      resolve(v);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        req.pause();
        finish(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => finish(Buffer.concat(chunks)));
    req.on('error', () => finish(undefined));
    req.on('close', () => finish(size > limit ? undefined : Buffer.concat(chunks)));
  });
}

export async function listen(server: Server, addr: ListenAddress): Promise<ListenAddress> {
  try {
    return await bindServer(server, addr, { ipv6Only: isIP(addr.host) === 6 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const where = formatListen(addr);
    const reason = listenFailureReason(err);
    throw new ImdsguardError('IMDSGUARD_E_LISTEN', `cannot listen on ${where}: ${reason}`, {
      cause: err,
      details: { address: where, errno: err.code },
      hint:
        err.code === 'EADDRINUSE'
          ? `another process is using ${where}; stop it or choose another --listen port (0 picks a free one)`
          : undefined,
    });
  }
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export function urlOf(addr: ListenAddress): string {
  return `http://${formatListen(addr)}`;
}
