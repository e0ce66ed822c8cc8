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
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import { adminConfigSchema, alertsConfigSchema, eventsConfigSchema } from '../../src/guard/events/config.js';
import { createEventOutputs, type EventOutputs } from '../../src/guard/events/outputs.js';
import { createGuard } from '../../src/guard/index.js';

const REQUESTS = Math.min(Number(process.env['REQUESTS'] ?? 4000), 100_000);
const CONCURRENCY = Math.min(Number(process.env['CONCURRENCY'] ?? 16), 256);
const WARMUP = 300;

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
  let received = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      res.end('ok');
    });
  });
  const receiverPort = await listen(receiver);
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

  const results: Result[] = [];
  results.push(await scenario('no outputs (baseline)', upstreamPort, async () => undefined));
  results.push(await scenario('store + sinks up', upstreamPort, outputs(receiverPort)));
  results.push(await scenario('store + dead sink (refused)', upstreamPort, outputs(closedPort)));
  results.push(await scenario('store + dead sink (hanging)', upstreamPort, outputs(hangingPort)));

  await closeServer(upstream);
  await closeServer(receiver);
  await closeServer(hanging);

  const base = results[0] as Result;
  console.log(
    `alerts bench: ${REQUESTS} refused IMDSv1 requests (each one an alert), concurrency ${CONCURRENCY}, node ${process.version}`,
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
