import { connect, createServer, type Server, type Socket } from 'node:net';
import { createEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { type ParsedRequest, parseRequests } from './raw-http.js';

/**
 * A real IMDS stand-in that records exactly what reached it: a TCP listener on loopback that keeps
 * every byte of every connection and passes them, untouched, to the project's emulator (or to a
 * scripted responder for stalls and trickles). What the recording holds is what the metadata service
 * would have received from the guard, before any HTTP parser could drop or merge a header.
 */

export interface UpstreamConnection {
  /** Order of arrival, from 0. */
  index: number;
  /** Every byte the guard sent on this connection. */
  received(): Buffer;
  /** Every byte the upstream answered. */
  sent(): Buffer;
  /** The requests in `received`, as parsed strictly (header names, order and duplicates kept). */
  requests(): ParsedRequest[];
  closed: boolean;
}

/** A scripted upstream: gets each connection's socket (after recording is attached). */
export type Responder = (socket: Socket, conn: UpstreamConnection) => void;

export interface RecordingUpstreamOptions {
  /** Options of the emulator behind the recorder (loopback, port 0 always). Ignored with `respond`. */
  emulator?: Omit<EmulatorOptions, 'listen' | 'admin'>;
  /** Answer with this instead of the emulator (stalls, trickles, garbage). */
  respond?: Responder;
}

export interface RecordingUpstream {
  readonly url: string;
  readonly port: number;
  /** The emulator behind the recorder, when there is one. */
  readonly emulator: Emulator | undefined;
  readonly connections: readonly UpstreamConnection[];
  /** Every request received, over every connection, in order. */
  requests(): ParsedRequest[];
  /** Total bytes received from the guard. */
  bytesReceived(): number;
  /** Resolves when every connection so far is closed; rejects after timeoutMs. */
  settled(timeoutMs: number): Promise<void>;
  /** Resolves once at least n connections were accepted; rejects after timeoutMs. */
  waitForConnections(n: number, timeoutMs: number): Promise<void>;
  /** Forgets the connections recorded so far. */
  clear(): void;
  close(): Promise<void>;
}

export async function createRecordingUpstream(
  options: RecordingUpstreamOptions = {},
): Promise<RecordingUpstream> {
  let emulator: Emulator | undefined;
  if (!options.respond) {
    emulator = createEmulator({ ...options.emulator, listen: [{ host: '127.0.0.1', port: 0 }] });
    await emulator.start();
  }
  const emuPort = emulator ? Number(new URL(emulator.url).port) : 0;
  let connections: UpstreamConnection[] = [];
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  let accepted = 0;

  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    const inChunks: Buffer[] = [];
    const outChunks: Buffer[] = [];
    const conn: UpstreamConnection = {
      index: accepted++,
      received: () => Buffer.concat(inChunks),
      sent: () => Buffer.concat(outChunks),
      requests: () => parseRequests(Buffer.concat(inChunks)),
      closed: false,
    };
    connections.push(conn);
    socket.on('data', (c: Buffer) => {
      inChunks.push(c);
      wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      conn.closed = true;
      sockets.delete(socket);
      wake();
    });
    wake();
    if (options.respond) {
      // the guard closed its side: nothing more can be answered
      socket.on('end', () => socket.destroy());
      options.respond(socket, conn);
      return;
    }
    // Pass every byte to the emulator untouched, and its answer back.
    const emu = connect({ host: '127.0.0.1', port: emuPort, allowHalfOpen: true });
    sockets.add(emu);
    emu.on('error', () => socket.destroy());
    emu.on('close', () => {
      sockets.delete(emu);
      socket.destroy();
    });
    emu.on('data', (c: Buffer) => {
      outChunks.push(c);
      if (!socket.destroyed) socket.write(c);
    });
    emu.on('end', () => socket.end());
    socket.on('data', (c: Buffer) => {
      if (!emu.destroyed) emu.write(c);
    });
    socket.on('end', () => emu.end());
    socket.on('close', () => emu.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`recording upstream: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, left);
        waiters.add(done);
      });
    }
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    emulator,
    get connections() {
      return connections;
    },
    requests: () => connections.flatMap((c) => c.requests()),
    bytesReceived: () => connections.reduce((n, c) => n + c.received().length, 0),
    settled: (timeoutMs) =>
      waitUntil(() => connections.every((c) => c.closed), timeoutMs, 'upstream connections to close'),
    waitForConnections: (n, timeoutMs) =>
      waitUntil(() => connections.length >= n, timeoutMs, `${n} upstream connection(s)`),
    clear() {
      connections = [];
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await emulator?.close();
    },
  };
}
