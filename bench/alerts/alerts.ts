/**
 * Does alerting slow requests down? The same guard, the same request loop (tokenless IMDSv1 requests
 * that the default policy refuses, so EVERY request raises an alert), four ways:
 *
 *   no outputs          the guard alone (baseline)
 *   sinks up            store + webhook receiver answering 200 + JSON-lines file, noise control off
 *   dead sink (refused) the webhook's port is closed: every delivery fails and is retried
 *   dead sink (hanging) the webhook accepts and never answers: every delivery times out
 *
 * Run: npm run bench:alerts   (REQUESTS=N CONCURRENCY=C to change the load; bounded either way)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { adminConfigSchema } from '../../src/config/admin.js';
import { alertsConfigSchema } from '../../src/config/alerts.js';
import { eventsConfigSchema } from '../../src/config/events.js';
import { parseConfig } from '../../src/config/index.js';
import { createGuard } from '../../src/guard/index.js';
import { createEventOutputs, type EventOutputs } from '../../src/guard/wire.js';

const REQUESTS = Math.min(Number(process.env['REQUESTS'] ?? 4000), 100_000);
const CONCURRENCY = Math.min(Number(process.env['CONCURRENCY'] ?? 16), 256);
const WARMUP = 300;
/** Rounds; each runs every scenario once, in turn, and the table shows the median per scenario. */
const ROUNDS = Math.min(Math.max(Number(process.env['ROUNDS'] ?? 3), 1), 9);

interface Result {
  name: string;
  reqPerSec: number;
  p50: number;
  p99: number;
  max: number;
  statuses: string;
  alertsDelivered: number;
  backlog: number;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function get(agent: Agent, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, agent, headers: { 'user-agent': 'bench/1.0' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function load(
  port: number,
  count: number,
): Promise<{ latencies: number[]; statuses: Map<number, number>; seconds: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      const status = await get(agent, port, `/latest/meta-data/iam/security-credentials/p${i % 50}`);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  agent.destroy();
  return { latencies, statuses, seconds };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function scenario(
  name: string,
  upstreamPort: number,
  makeOutputs: (dir: string) => Promise<EventOutputs | undefined>,
): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'imdsguard-bench-alerts-'));
  const config = parseConfig({
    guard: { listen: ['127.0.0.1:0'], upstream: `http://127.0.0.1:${upstreamPort}` },
  });
  const outputs = await makeOutputs(dir);
  const guard = createGuard({ config: config.guard, hostname: 'bench', recorders: outputs?.recorders ?? [] });
  await guard.start();
  const port = guard.addresses[0]?.port as number;
  await load(port, WARMUP);
  const { latencies, statuses, seconds } = await load(port, REQUESTS);
  const sorted = [...latencies].sort((a, b) => a - b);
  const stats = outputs?.alerts?.stats();
  const result: Result = {
    name,
    reqPerSec: REQUESTS / seconds,
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
    statuses: [...statuses].map(([s, n]) => `${s}x${n}`).join(' '),
    alertsDelivered: stats?.sinks.reduce((n, s) => n + s.delivered, 0) ?? 0,
    backlog: stats?.sinks.reduce((n, s) => n + s.backlog, 0) ?? 0,
  };
  await guard.close();
  await outputs?.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

/** Every alert goes to every sink: the worst case for the pipeline. */
const LOUD_NOISE = { perKey: 10_000, globalLimit: 1_000_000 };

async function main(): Promise<void> {
  const upstream = createServer((_req, res) => res.end('ok'));
  const upstreamPort = await listen(upstream);
  // The live receiver runs in its own process, as a real webhook endpoint would: its CPU is not the guard's.
  const receiverProc = spawn(
    process.execPath,
    [
      '-e',
      `let n=0;const s=require('node:http').createServer((q,r)=>{q.resume();q.on('end',()=>{n++;r.end('ok')})});
       s.listen(0,'127.0.0.1',()=>console.log(s.address().port));
       process.on('SIGTERM',()=>{console.log(n);process.exit(0)});`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const receiverLines = createInterface({ input: receiverProc.stdout });
  const lines = receiverLines[Symbol.asyncIterator]();
  const receiverPort = Number((await lines.next()).value);
  const hanging = createServer(() => {
    // accepts, reads nothing, never answers
  });
  const hangingPort = await listen(hanging);
  const closedPort = await (async () => {
    const s = createServer();
    const p = await listen(s);
    await closeServer(s);
    return p;
  })();

  const outputs = (webhookPort: number) => async (dir: string) =>
    createEventOutputs(
      eventsConfigSchema.parse({ db: join(dir, 'events.db') }),
      alertsConfigSchema.parse({
        webhooks: [{ url: `http://127.0.0.1:${webhookPort}/hook`, name: 'hook', timeoutMs: 2000 }],
        sinks: [{ type: 'file', name: 'file', path: join(dir, 'alerts.jsonl') }],
        noise: LOUD_NOISE,
        retry: { initialMs: 50, maxMs: 1000 },
        drainTimeoutMs: 500,
      }),
      adminConfigSchema.parse({}),
      { hostname: 'bench', isReady: () => true },
    );

  const scenarios: Array<[string, (dir: string) => Promise<EventOutputs | undefined>]> = [
    ['no outputs (baseline)', async () => undefined],
    ['store + sinks up', outputs(receiverPort)],
    ['store + dead sink (refused)', outputs(closedPort)],
    ['store + dead sink (hanging)', outputs(hangingPort)],
  ];
  const runs: Result[][] = scenarios.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, [name, make]] of scenarios.entries())
      runs[i]?.push(await scenario(name, upstreamPort, make));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const results: Result[] = runs.map((rs) => ({
    name: rs[0]?.name ?? '',
    reqPerSec: median(rs.map((r) => r.reqPerSec)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    max: median(rs.map((r) => r.max)),
    statuses: rs.map((r) => r.statuses).join(' / '),
    alertsDelivered: median(rs.map((r) => r.alertsDelivered)),
    backlog: median(rs.map((r) => r.backlog)),
  }));

  receiverProc.kill('SIGTERM');
  const received = Number((await lines.next()).value);
  await closeServer(hanging);

  const base = results[0] as Result;
  console.log(
    `alerts bench: ${REQUESTS} refused IMDSv1 requests (each one an alert), concurrency ${CONCURRENCY}, median of ${ROUNDS} rounds, node ${process.version}`,
  );
  console.log('');
  console.log(
    '| scenario | req/s | p50 ms | p99 ms | max ms | p99 vs baseline | statuses | alerts delivered (all sinks) | backlog at end |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |');
  for (const r of results) {
    console.log(
      `| ${r.name} | ${r.reqPerSec.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(1)} | ${(r.p99 / base.p99).toFixed(2)}x | ${r.statuses} | ${r.alertsDelivered} | ${r.backlog} |`,
    );
  }
  console.log('');
  console.log(`webhook receiver got ${received} requests`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
