import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseConfig } from '../../src/config/index.js';
import { createEmulator } from '../../src/emulator/index.js';
import { createThreadedProcResolver } from '../../src/guard/attribution/threaded.js';
import { noAttribution, type ProcessResolver } from '../../src/guard/attribution/types.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { createGuard } from '../../src/guard/index.js';
import { workerBudgetMs } from '../../src/guard/wire.js';
import { pct } from './stats.js';

/**
 * The concurrency series: P live processes (50) open N new connections to the guard at
 * once (N = 1, 10, 100, 1,000), one IMDSv1 GET on each, and keep them open until every answer is in.
 * The guard is createGuard in monitor mode in front of the emulator, with the resolver as wire.ts
 * builds it (a worker thread, the inline tier when sock_diag is there, the default timeoutMs and
 * eventWaitMs). Judged from the events: callers not named (wanted: none), callers recorded as timed
 * out while their process lives (wanted: none), and how many were named late (after the request's
 * deadline). Beside it, the baseline of the same run: the same burst through a guard with attribution
 * off (the burst's wall time, from "go" to the last answer, in both).
 */

const PY = '/usr/bin/python3';
const CLIENT = `
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
print('ready', flush=True)
sys.stdin.readline()
cs = [socket.create_connection(('127.0.0.1', port)) for _ in range(n)]
req = b'GET /latest/meta-data/instance-id HTTP/1.1\\r\\nHost: 169.254.169.254\\r\\n\\r\\n'
for c in cs: c.sendall(req)
def answer(c):
    buf = b''
    while b'\\r\\n\\r\\n' not in buf:
        d = c.recv(65536)
        if not d: return
        buf += d
    head, _, body = buf.partition(b'\\r\\n\\r\\n')
    cl = 0
    for l in head.split(b'\\r\\n'):
        if l.lower().startswith(b'content-length:'): cl = int(l.split(b':')[1])
    while len(body) < cl:
        d = c.recv(65536)
        if not d: return
        body += d
for c in cs: answer(c)
print('done', flush=True)
sys.stdin.read()
`;

export interface Burst {
  connections: number;
  processes: number;
  /** Events recorded (one per request). */
  events: number;
  /** Requests whose event does not name their process (no event counts as not named). */
  unnamed: number;
  /** Events whose caller is the timeout placeholder although the process lived. */
  timedOut: number;
  /** Events named after the request's deadline (caller.late). */
  late: number;
  /** attributionMs of the events: how long naming the caller took (to the late answer, for late ones). */
  p50: number;
  p99: number;
  max: number;
  /** From "go" to the last answer, ms. */
  burstMs: number;
  /** A few distinct reasons for the callers not named. */
  errors: string[];
}

const GUARD = { timeoutMs: 50, eventWaitMs: 2000 };

async function lines(c: ChildProcess): Promise<AsyncIterator<string>> {
  return createInterface({ input: c.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
}

/** One burst: `processes` fresh processes open `total` connections at once. */
export async function burst(total: number, processes: number, attribution: boolean): Promise<Burst> {
  const emulator = createEmulator({ listen: [{ host: '127.0.0.1', port: 0 }] });
  await emulator.start();
  const resolver: ProcessResolver & { stats?: () => Promise<unknown> } = attribution
    ? createThreadedProcResolver({
        budgetMs: workerBudgetMs(GUARD.timeoutMs, GUARD.eventWaitMs),
      })
    : noAttribution;
  const events: GuardEvent[] = [];
  const config = parseConfig({
    guard: {
      listen: ['127.0.0.1:0'],
      upstream: emulator.url,
      mode: 'monitor',
      attribution: { enabled: attribution, ...GUARD },
    },
  }).guard;
  const guard = createGuard({
    config,
    resolver,
    hostname: 'bench',
    recorders: [{ record: (e) => void events.push(e), close: async () => {} }],
  });
  await guard.start();
  const port = Number(new URL(guard.url).port);
  const procs = Math.min(processes, total);
  const per = Array.from(
    { length: procs },
    (_, i) => Math.floor(total / procs) + (i < total % procs ? 1 : 0),
  );
  const children = per.map((n) =>
    spawn(PY, ['-c', CLIENT, String(port), String(n)], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  try {
    const outs = await Promise.all(children.map(lines));
    await Promise.all(outs.map((o) => o.next())); // every process is up: 'ready'
    const pids = new Set(children.map((c) => c.pid as number));
    const t0 = performance.now();
    for (const c of children) c.stdin?.write('go\n');
    await Promise.all(outs.map((o) => o.next())); // 'done': every answer is in
    const burstMs = performance.now() - t0;
    // Events of requests decided without their caller wait for it (at most eventWaitMs).
    const end = Date.now() + GUARD.eventWaitMs + 10_000;
    while (events.length < total && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const ms = events.map((e) => e.attributionMs ?? Number.NaN).sort((a, b) => a - b);
    const unnamed = events.filter((e) => e.caller?.resolved !== 'full' || !pids.has(e.caller.pid as number));
    return {
      connections: total,
      processes: procs,
      events: events.length,
      unnamed: unnamed.length + (total - events.length),
      timedOut: events.filter((e) => e.caller?.error?.includes('timed out')).length,
      late: events.filter((e) => e.caller?.late).length,
      p50: pct(ms, 50),
      p99: pct(ms, 99),
      max: ms[ms.length - 1] ?? Number.NaN,
      burstMs,
      errors: [...new Set(unnamed.map((e) => e.caller?.error ?? '(no caller)'))].slice(0, 3),
    };
  } finally {
    for (const c of children) c.stdin?.end();
    await guard.close();
    await resolver.close();
    await emulator.close();
  }
}

export interface ConcurrencyRow {
  on: Burst;
  /** The baseline: the same burst with attribution off. */
  off: Burst;
}

export async function concurrencySeries(sizes: number[], processes: number): Promise<ConcurrencyRow[]> {
  const rows: ConcurrencyRow[] = [];
  for (const n of sizes) {
    const off = await burst(n, processes, false);
    const on = await burst(n, processes, true);
    rows.push({ on, off });
  }
  return rows;
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');

export function concurrencyTable(rows: ConcurrencyRow[]): string[] {
  const out = [
    '| connections | processes | unnamed | timed out | late | naming p50 ms | naming p99 ms | naming max ms | burst ms, attribution on | burst ms, off (baseline) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const { on, off } of rows) {
    out.push(
      `| ${on.connections} | ${on.processes} | ${on.unnamed} | ${on.timedOut} | ${on.late} | ${f(on.p50)} | ${f(on.p99)} | ${f(on.max)} | ${f(on.burstMs)} | ${f(off.burstMs)} |`,
    );
  }
  for (const { on } of rows)
    if (on.errors.length > 0) out.push(`not named at ${on.connections}: ${on.errors.join(' | ')}`);
  return out;
}
