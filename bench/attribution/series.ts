import { cpus, loadavg } from 'node:os';
import { loadSockDiag } from '../../src/guard/attribution/sock-diag.js';
import { createThreadedProcResolver } from '../../src/guard/attribution/threaded.js';
import { concurrencySeries, concurrencyTable } from './concurrency.js';
import { type SocketSeries, socketSeries, socketTable } from './sockets.js';

/**
 * bench/attribution series, each beside its baseline from the same run:
 *
 * - concurrency: N new connections at once from 50 live processes through a guard (concurrency.ts);
 *   baseline: the same burst with attribution off;
 * - socket count: a caller holding N sockets opens new connections (sockets.ts); baseline: reading
 *   that caller's whole fd table for the same connections.
 *
 * Env: CONCURRENCY (1,10,100,1000), PROCESSES (50), SOCKETS (10,100,900,5000), LOOKUPS (200),
 * SERIES (concurrency,sockets).
 * Run: npm run bench:attribution-series (on a quiet machine for the figures in docs/benchmarks.md).
 */

const list = (v: string | undefined, d: string) =>
  (v ?? d)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

async function main(): Promise<void> {
  const series = new Set(list(process.env.SERIES, 'concurrency,sockets'));
  const diag = loadSockDiag();
  console.log(
    `node ${process.version}, ${cpus().length} CPUs, load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; sock_diag: ${diag.diag ? 'native addon loaded' : `not in use (${diag.reason})`}`,
  );
  if (series.has('concurrency')) {
    const sizes = list(process.env.CONCURRENCY, '1,10,100,1000').map(Number);
    const rows = await concurrencySeries(sizes, Number(process.env.PROCESSES ?? 50));
    console.log('\nConcurrency: new connections at once from live processes, one IMDSv1 GET each');
    for (const line of concurrencyTable(rows)) console.log(line);
  }
  if (series.has('sockets')) {
    const sizes = list(process.env.SOCKETS, '10,100,900,5000').map(Number);
    const lookups = Number(process.env.LOOKUPS ?? 200);
    // As the guard runs it: the worker thread, and the inline tier when sock_diag is there.
    const r = createThreadedProcResolver({ budgetMs: 2000 });
    const rows: SocketSeries[] = [];
    try {
      for (const n of sizes) rows.push(await socketSeries(r, n, lookups));
    } finally {
      await r.close();
    }
    console.log("\nSocket count: a caller's new connection, by the number of sockets it holds");
    for (const line of socketTable(rows)) console.log(line);
  }
}

await main();
