import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { ThreadedResolver } from '../../src/guard/attribution/threaded.js';
import { connectionInfo } from '../../src/guard/attribution/types.js';
import { pct } from './stats.js';

/**
 * The socket-count series: a caller that holds N sockets (N/2 connected pairs inside itself) opens a
 * new connection per request, closing the previous one, as IMDS clients do. The lookup of each new
 * connection should cost the same whatever N is. Beside it, in the same run, the baseline: reading
 * every fd link of that caller (what the resolver did for a known caller's new socket before it
 * probed the likely fds first), timed for the same connections.
 */

const PY = '/usr/bin/python3';
const CALLER = `
import socket, sys
port, n, k = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1024)
held = []
for _ in range(n // 2):
    c = socket.create_connection(srv.getsockname()); a, _ = srv.accept(); held += [c, a]
print('ready', flush=True)
sys.stdin.readline()
for i in range(k):
    s = socket.create_connection(('127.0.0.1', port)); s.sendall(b'x')
    while s.recv(4096): pass
    s.close()
print('done', flush=True)
sys.stdin.read()
`;

export interface SocketSeries {
  sockets: number;
  lookups: number;
  correct: number;
  p50: number;
  p99: number;
  /** The baseline: every fd link of the caller read, for the same connections. */
  fullScanP50: number;
  fullScanP99: number;
}

/** Reads every fd link of a process; returns how many are sockets. */
function fullScan(pid: number): number {
  const dir = `/proc/${pid}/fd`;
  let sockets = 0;
  for (const fd of readdirSync(dir)) {
    try {
      if (readlinkSync(`${dir}/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      // closed meanwhile
    }
  }
  return sockets;
}

export async function socketSeries(
  resolver: ThreadedResolver,
  sockets: number,
  lookups: number,
): Promise<SocketSeries> {
  let onConn: (s: Socket) => Promise<void> = async () => {};
  const server = createServer((s) => {
    s.on('error', () => {});
    void onConn(s).finally(() => s.end());
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as { port: number }).port;
  const c = spawn(PY, ['-c', CALLER, String(port), String(sockets), String(lookups)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: c.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  await lines.next();
  const pid = c.pid as number;
  const ms: number[] = [];
  const base: number[] = [];
  let correct = 0;
  onConn = async (s) => {
    const conn = connectionInfo(s);
    const t = performance.now();
    const caller = await resolver.resolve(conn);
    ms.push(performance.now() - t);
    if (caller.pid === pid) correct++;
    // The baseline for the same connection: the whole fd table of the caller, read once.
    const t2 = performance.now();
    fullScan(pid);
    base.push(performance.now() - t2);
  };
  c.stdin?.write('go\n');
  await lines.next();
  c.stdin?.end();
  server.close();
  // The first lookup of a process never seen before reads its whole fd table (once): not judged.
  const steady = ms.slice(1).sort((a, b) => a - b);
  const b = base.slice(1).sort((x, y) => x - y);
  return {
    sockets,
    lookups: ms.length,
    correct,
    p50: pct(steady, 50),
    p99: pct(steady, 99),
    fullScanP50: pct(b, 50),
    fullScanP99: pct(b, 99),
  };
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-');

export function socketTable(rows: SocketSeries[]): string[] {
  const out = [
    '| sockets held by the caller | lookups | correct pid | lookup p50 ms | lookup p99 ms | full fd scan p50 ms (baseline) | full fd scan p99 ms |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows)
    out.push(
      `| ${r.sockets} | ${r.lookups} | ${r.correct} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.fullScanP50)} | ${f(r.fullScanP99)} |`,
    );
  return out;
}
