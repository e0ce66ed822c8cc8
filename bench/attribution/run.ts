import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { parseConfig } from '../../src/config/index.js';
import { createEmulator } from '../../src/emulator/index.js';
import { noAttribution, type ProcessResolver } from '../../src/guard/attribution/index.js';
import { readAll } from '../../src/guard/attribution/proc-io.js';
import { loadSockDiag } from '../../src/guard/attribution/sock-diag.js';
import { createThreadedProcResolver, type ThreadedResolver } from '../../src/guard/attribution/threaded.js';
import { type ConnectionInfo, connectionInfo } from '../../src/guard/attribution/types.js';
import { createGuard } from '../../src/guard/index.js';
import { naiveResolveAsync, naiveResolveSync } from './naive.js';
import { pct } from './stats.js';

/**
 * bench/attribution: attribution latency per request on a loaded host, the resolver side by side with
 * the naive full /proc/*\/fd scan, in the same run. The resolver runs as the guard runs it: on its
 * worker thread (threaded.ts), with sock_diag when the native addon is built; the same resolver
 * without sock_diag (the /proc/net/tcp fallback) is measured too.
 *
 * Load: IDLE_PROCS idle processes and EXTRA_FDS extra open fds (pipes and /dev/null), made by one
 * python helper that forks the idle children first and then opens the fds, raising RLIMIT_NOFILE as
 * far as it may (several holder processes share the fds when the hard limit is lower). Every helper reads stdin and exits on EOF, so nothing outlives the bench.
 *
 * Then guard throughput (createGuard in front of the emulator, monitor mode) with attribution on and
 * off, measured by wrk with keep-alive connections and with a new connection per request.
 *
 * Steady state and cold start: a guard runs for days, so the judged series are measured after N_WARM
 * lookups (V8 keeps compiling the hot functions for the first few thousand; on two vCPUs those
 * compiles take the CPU from the lookups). The first N_COLD lookups of the fresh resolver are reported
 * too, as their own series.
 *
 * Env: IDLE_PROCS (500), EXTRA_FDS (20000), N_NEW (500), N_WARM (2500), N_COLD (200), N_LONG (1000),
 * N_NAIVE (15), WRK_SECONDS (5).
 */

const IDLE_PROCS = Number(process.env.IDLE_PROCS ?? 500);
const EXTRA_FDS = Number(process.env.EXTRA_FDS ?? 20_000);
const N_NEW = Number(process.env.N_NEW ?? 500);
const N_WARM = Number(process.env.N_WARM ?? 2500);
const N_COLD = Math.min(N_WARM, Number(process.env.N_COLD ?? 200));
const N_LONG = Number(process.env.N_LONG ?? 1000);
const N_NAIVE = Number(process.env.N_NAIVE ?? 15);
const WRK_SECONDS = Number(process.env.WRK_SECONDS ?? 5);
const PY = '/usr/bin/python3';
const CURL = '/usr/bin/curl';

const LOAD_SCRIPT = `
import os, sys, resource
n_procs, n_fds = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n_procs):
    if os.fork() == 0:
        sys.stdin.buffer.read()
        os._exit(0)
# Raise RLIMIT_NOFILE as far as allowed; without CAP_SYS_RESOURCE several holders share the fds.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n_fds + 64
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    cap = want
except (ValueError, OSError):
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cap = hard
per = max(1, cap - 64)
def hold(n):
    fds = []
    while len(fds) < n:
        r, w = os.pipe()
        fds += [r, w]
        if len(fds) < n:
            fds.append(os.open('/dev/null', os.O_RDONLY))
    return fds
left = n_fds
holders = 0
while left > per:
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        hold(per)
        os.write(w, b'1')
        os.close(w)
        sys.stdin.buffer.read()
        os._exit(0)
    os.close(w)
    os.read(r, 1)
    os.close(r)
    left -= per
    holders += 1
held = hold(left)
print(holders + 1, flush=True)
sys.stdin.buffer.read()
`;

/** Starts one curl per line of stdin (the URL); prints its pid, then "exited" once it has exited. */
const LAUNCHER = `
import subprocess, sys
curl = sys.argv[1]
for line in sys.stdin:
    p = subprocess.Popen([curl, '-s', '-o', '/dev/null', line.strip()])
    print(p.pid, flush=True)
    p.wait()
    print('exited', flush=True)
`;

const LONG_CLIENT = `
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    s = socket.create_connection(('127.0.0.1', port))
    s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')
    while s.recv(4096):
        pass
    s.close()
`;

type Handler = (s: Socket, conn: ConnectionInfo) => Promise<void>;

interface Series {
  name: string;
  ms: number[];
  correct: number;
  total: number;
  /** CPU time of this process (user + system, all threads: the kernel's table walk included) per lookup, ms. */
  cpuMs?: number;
}

/** Runs a phase and records this process's CPU time per lookup (robust to a busy machine). */
async function withCpu(run: () => Promise<Series>): Promise<Series> {
  const c0 = process.cpuUsage();
  const s = await run();
  const c = process.cpuUsage(c0);
  s.cpuMs = (c.user + c.system) / 1000 / Math.max(1, s.total || s.ms.length);
  return s;
}

function summary(s: Series): { p50: number; p99: number; max: number; n: number; correct: string } {
  const sorted = [...s.ms].sort((a, b) => a - b);
  return {
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    n: sorted.length,
    correct: `${s.correct}/${s.total}`,
  };
}

async function waitExit(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  await new Promise<void>((res) => c.once('exit', () => res()));
}

async function countFds(): Promise<{ procs: number; fds: number }> {
  let procs = 0;
  let fds = 0;
  for (const n of await readdir('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    procs++;
    try {
      fds += (await stat(`/proc/${n}/fd`)).size;
    } catch {
      // gone or denied
    }
  }
  return { procs, fds };
}

interface Throughput {
  name: string;
  rps: number;
  p50: string;
  p99: string;
  errors: string;
}

async function wrk(
  url: string,
  close: boolean,
): Promise<{ rps: number; p50: string; p99: string; errors: string }> {
  const args = [
    '-t1',
    '-c8',
    `-d${WRK_SECONDS}s`,
    '--latency',
    ...(close ? ['-H', 'Connection: close'] : []),
    url,
  ];
  const out = await new Promise<string>((res, rej) => {
    const c = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    c.stdout.on('data', (d) => {
      text += d;
    });
    c.once('error', rej);
    c.once('exit', () => res(text));
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? '-';
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? '-';
  const errors =
    /Socket errors: (.*)/.exec(out)?.[1] ?? /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
  return { rps, p50, p99, errors };
}

async function throughput(): Promise<Throughput[]> {
  const emulator = createEmulator({ listen: [{ host: '127.0.0.1', port: 0 }] });
  await emulator.start();
  const out: Throughput[] = [];
  try {
    // Keep-alive first (8 connections each), then a new connection per request: each closed
    // connection leaves TIME_WAIT rows in /proc/net/tcp for 60 s, which every later lookup must walk.
    const runs: Array<[attribution: boolean, close: boolean]> = [
      [false, false],
      [true, false],
      [true, true],
      [false, true],
    ];
    for (const [attribution, close] of runs) {
      // As wire.ts builds it: the resolver on a worker thread, budget 80% of the 50 ms timeout.
      const resolver: ProcessResolver = attribution
        ? createThreadedProcResolver({ budgetMs: 40 })
        : noAttribution;
      // Let the worker start (a guard starts long before its first client).
      if (attribution) await new Promise((r) => setTimeout(r, 500));
      const config = parseConfig({
        guard: { listen: ['127.0.0.1:0'], upstream: emulator.url, mode: 'monitor' },
      }).guard;
      let events = 0;
      let attributed = 0;
      const guard = createGuard({
        config,
        resolver,
        hostname: 'bench',
        recorders: [
          {
            record: (e) => {
              events++;
              if (e.caller?.resolved === 'full' && e.caller.exe?.endsWith('/wrk')) attributed++;
            },
            close: async () => {},
          },
        ],
      });
      await guard.start();
      const rowsBefore = (await readAll('/proc/net/tcp', 64 * 1024 * 1024)).text.split('\n').length - 2;
      const r = await wrk(`${guard.url}/latest/meta-data/instance-id`, close);
      out.push({
        name: `guard, attribution ${attribution ? 'on' : 'off'}, ${close ? 'new connection per request' : 'keep-alive (8 connections)'}${attribution ? ` [${attributed}/${events} events name wrk]` : ''} (tcp rows at start: ${rowsBefore})`,
        ...r,
      });
      await guard.close();
      await resolver.close();
    }
  } finally {
    await emulator.close();
  }
  return out;
}

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('bench/attribution needs Linux /proc');
  const before = await countFds();
  const rows = async () => (await readAll('/proc/net/tcp', 64 * 1024 * 1024)).text.split('\n').length - 2;
  console.log(
    `host: ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}, /proc/net/tcp rows ${await rows()}`,
  );
  console.log(`host before load: ${before.procs} processes, ${before.fds} open fds`);

  // ---- load
  const load = spawn(PY, ['-c', LOAD_SCRIPT, String(IDLE_PROCS), String(EXTRA_FDS)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const cleanup = () => {
    load.stdin?.end();
  };
  process.on('exit', cleanup);
  await new Promise<void>((res, rej) => {
    load.once('error', rej);
    load.once('exit', (code) => rej(new Error(`load helper exited (${code})`)));
    load.stdout?.once('data', () => res());
  });
  const after = await countFds();
  console.log(
    `host under load:   ${after.procs} processes, ${after.fds} open fds (+${after.procs - before.procs} processes, +${after.fds - before.fds} fds)`,
  );

  // ---- server whose handler is swapped per phase
  let handler: Handler = async () => {};
  const server = createServer((s) => {
    s.on('error', () => {});
    const conn = connectionInfo(s);
    void handler(s, conn).finally(() => s.end('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as { port: number }).port;

  // As wire.ts builds it: a worker thread, budget 80% of the default 50 ms timeout.
  const diagLoad = loadSockDiag();
  console.log(`sock_diag: ${diagLoad.diag ? 'native addon loaded' : `not in use (${diagLoad.reason})`}`);
  const startResolver = async (sockDiag: boolean): Promise<ThreadedResolver> => {
    const r = createThreadedProcResolver(sockDiag ? { budgetMs: 40 } : { budgetMs: 40, sockDiag: false });
    // A guard starts long before its first client: let the worker list the processes first.
    await new Promise((res) => setTimeout(res, 1000));
    return r;
  };
  const resolver = await startResolver(true);

  const results: Series[] = [];

  // ---- the kernel floors: one read of /proc/net/tcp; one sock_diag lookup (in this thread)
  results.push(
    await withCpu(async () => {
      const s: Series = {
        name: 'read /proc/net/tcp (floor of the /proc path)',
        ms: [],
        correct: 0,
        total: 0,
      };
      for (let i = 0; i < 300; i++) {
        const t = performance.now();
        await readAll('/proc/net/tcp', 64 * 1024 * 1024);
        s.ms.push(performance.now() - t);
      }
      return s;
    }),
  );
  if (diagLoad.diag) {
    const diag = diagLoad.diag;
    const lo = new Uint8Array([127, 0, 0, 1]);
    results.push(
      await withCpu(async () => {
        const s: Series = {
          name: 'one sock_diag lookup (floor of the sock_diag path)',
          ms: [],
          correct: 0,
          total: 0,
        };
        for (let i = 0; i < 1000; i++) {
          const t = performance.now();
          diag.lookup(4, lo, 40000 + (i % 1000), lo, port);
          s.ms.push(performance.now() - t);
        }
        return s;
      }),
    );
  }

  type Resolve = (conn: ConnectionInfo) => Promise<number | undefined>;
  const ours: Resolve = async (conn) => (await resolver.resolve(conn)).pid;

  // curl is started by a separate launcher process, as on a real host where the guard is not the
  // parent of its callers: a process that has just forked pays copy-on-write faults on its own
  // memory until the child execs, which would be charged to the lookup being measured.
  const launcher = spawn(PY, ['-c', LAUNCHER, CURL], { stdio: ['pipe', 'pipe', 'inherit'] });
  const launched = createInterface({ input: launcher.stdout as NodeJS.ReadableStream });
  const pids = launched[Symbol.asyncIterator]();
  const launch = async (url: string): Promise<number> => {
    launcher.stdin?.write(`${url}\n`);
    const line = await pids.next();
    return line.done ? -2 : Number(line.value);
  };
  /** Waits for the launcher's "exited" line: the curl it started has exited. */
  const launcherExited = async () => {
    await pids.next();
  };

  async function newProcessPhase(name: string, n: number, resolve: Resolve): Promise<Series> {
    const s: Series = { name, ms: [], correct: 0, total: 0 };
    for (let i = 0; i < n; i++) {
      let found = -1;
      const done = new Promise<void>((res) => {
        handler = async (_sock, conn) => {
          const t = performance.now();
          found = (await resolve(conn)) ?? -1;
          s.ms.push(performance.now() - t);
          s.total++;
          res();
        };
      });
      const expected = await launch(`http://127.0.0.1:${port}/latest/meta-data/`);
      await done;
      if (found === expected) s.correct++;
      await launcherExited();
    }
    return s;
  }

  async function longLivedPhase(name: string, n: number, resolve: Resolve): Promise<Series> {
    const s: Series = { name, ms: [], correct: 0, total: 0 };
    const c = spawn(PY, ['-c', LONG_CLIENT, String(port), String(n)], { stdio: 'ignore' });
    const expected = c.pid;
    handler = async (_sock, conn) => {
      const t = performance.now();
      const pid = await resolve(conn);
      s.ms.push(performance.now() - t);
      s.total++;
      if (pid === expected) s.correct++;
    };
    await waitExit(c);
    return s;
  }

  async function sameConnectionPhase(name: string, n: number): Promise<Series> {
    const s: Series = { name, ms: [], correct: 0, total: 0 };
    const c = spawn(
      PY,
      [
        '-c',
        'import socket,sys,time\ns=socket.create_connection(("127.0.0.1",int(sys.argv[1])))\nsys.stdin.read()',
        String(port),
      ],
      {
        stdio: ['pipe', 'ignore', 'ignore'],
      },
    );
    const conn = await new Promise<ConnectionInfo>((res) => {
      handler = async (_sock, ci) => {
        res(ci);
        await new Promise((r) => setTimeout(r, 60_000).unref());
      };
    });
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const pid = (await resolver.resolve(conn)).pid;
      s.ms.push(performance.now() - t);
      s.total++;
      if (pid === c.pid) s.correct++;
    }
    c.stdin?.end();
    await waitExit(c);
    return s;
  }

  const where = diagLoad.diag ? 'sock_diag + /proc, worker thread' : '/proc only, worker thread';
  // Cold start: the first lookups of the fresh resolver (V8 still compiling), then the warm-up.
  const ourCold = await withCpu(() =>
    newProcessPhase(
      `resolver (${where}): new process per request, the first ${N_COLD} lookups after start`,
      N_COLD,
      ours,
    ),
  );
  await newProcessPhase('warm-up', N_WARM - N_COLD, ours);
  const ourNew = await withCpu(() =>
    newProcessPhase(
      `resolver (${where}): new process per request (curl), after ${N_WARM} lookups`,
      N_NEW,
      ours,
    ),
  );
  const ourLong = await withCpu(() =>
    longLivedPhase(`resolver (${where}): long-lived process, new connection per request`, N_LONG, ours),
  );
  results.push(ourCold, ourNew, ourLong);
  results.push(
    await withCpu(() => sameConnectionPhase(`resolver (${where}): same connection again (cache)`, N_LONG)),
  );
  const st = await resolver.stats();
  await resolver.close();

  // The fallback users get without the addon (or for a client in another network namespace).
  if (diagLoad.diag) {
    const procOnly = await startResolver(false);
    const procResolve: Resolve = async (conn) => (await procOnly.resolve(conn)).pid;
    await newProcessPhase('warm-up', 5, procResolve);
    results.push(
      await withCpu(() =>
        newProcessPhase(
          'resolver without sock_diag (/proc/net/tcp): new process per request',
          Math.ceil(N_NEW / 2),
          procResolve,
        ),
      ),
      await withCpu(() =>
        longLivedPhase(
          'resolver without sock_diag (/proc/net/tcp): long-lived process',
          Math.ceil(N_LONG / 2),
          procResolve,
        ),
      ),
    );
    await procOnly.close();
  }
  const naiveNew = await withCpu(() =>
    newProcessPhase('naive full scan (async): new process per request', N_NAIVE, naiveResolveAsync),
  );
  const naiveLong = await withCpu(() =>
    longLivedPhase('naive full scan (async): long-lived process', N_NAIVE, naiveResolveAsync),
  );
  const naiveSync = await withCpu(() =>
    newProcessPhase('naive full scan (sync): new process per request', N_NAIVE, naiveResolveSync),
  );
  results.push(naiveNew, naiveLong, naiveSync);

  server.close();
  launcher.stdin?.end();
  let tput: Throughput[] = [];
  try {
    tput = await throughput();
  } catch (err) {
    console.log(`guard throughput not measured: ${(err as Error).message}`);
  }
  cleanup();
  await waitExit(load);
  // The idle children exit on their own stdin's EOF, a moment after the helper: give them 5 s.
  let end = await countFds();
  for (let i = 0; i < 50 && end.procs > before.procs + 10; i++) {
    await new Promise((r) => setTimeout(r, 100));
    end = await countFds();
  }
  console.log(
    `after the run: load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}, /proc/net/tcp rows ${await rows()} (TIME_WAIT from the bench's own connections)`,
  );

  // ---- report
  const f = (x: number) => (Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(3) : x.toFixed(1));
  console.log('');
  console.log(`| series | n | p50 ms | p99 ms | max ms | CPU ms per lookup | correct pid |`);
  console.log(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const r of results) {
    const s = summary(r);
    const cpu = r.cpuMs === undefined ? '-' : f(r.cpuMs);
    console.log(
      `| ${r.name} | ${s.n} | ${f(s.p50)} | ${f(s.p99)} | ${f(s.max)} | ${cpu} | ${r.total ? s.correct : '-'} |`,
    );
  }
  const newS = summary(ourNew);
  const longS = summary(ourLong);
  const nNew = summary(naiveNew);
  const nLong = summary(naiveLong);
  const nSync = summary(naiveSync);
  console.log('');
  console.log(
    `speed-up vs naive async, new process:  p50 ${f(nNew.p50 / newS.p50)}x, p99 ${f(nNew.p99 / newS.p99)}x`,
  );
  console.log(
    `speed-up vs naive sync,  new process:  p50 ${f(nSync.p50 / newS.p50)}x, p99 ${f(nSync.p99 / newS.p99)}x`,
  );
  console.log(
    `speed-up vs naive async, long-lived:   p50 ${f(nLong.p50 / longS.p50)}x, p99 ${f(nLong.p99 / longS.p99)}x`,
  );
  const cpu = (r: Series) => r.cpuMs ?? Number.NaN;
  console.log(
    `CPU per lookup vs naive async: new process ${f(cpu(naiveNew) / cpu(ourNew))}x, long-lived ${f(cpu(naiveLong) / cpu(ourLong))}x`,
  );
  const judge = (ok: boolean) => (ok ? 'MET' : 'MISSED');
  console.log(
    `target p99 < 1 ms (steady state): new process ${f(newS.p99)} ms ${judge(newS.p99 < 1)}, long-lived ${f(longS.p99)} ms ${judge(longS.p99 < 1)}`,
  );
  const coldS = summary(ourCold);
  console.log(
    `cold start (the first ${N_COLD} lookups, not judged): new process p50 ${f(coldS.p50)} ms, p99 ${f(coldS.p99)} ms`,
  );
  const worst = Math.min(
    nNew.p50 / newS.p50,
    nNew.p99 / newS.p99,
    nLong.p50 / longS.p50,
    nLong.p99 / longS.p99,
  );
  console.log(
    `target >= 50x the full scan (worst of p50 and p99, both clients): ${f(worst)}x ${judge(worst >= 50)}`,
  );
  console.log(`resolver stats: ${JSON.stringify(st)}`);
  if (tput.length > 0) {
    console.log('');
    console.log(
      `| guard throughput (wrk -t1 -c8 -d${WRK_SECONDS}s, same load) | req/s | p50 | p99 | errors |`,
    );
    console.log('| --- | ---: | ---: | ---: | --- |');
    for (const t of tput)
      console.log(`| ${t.name} | ${t.rps.toFixed(0)} | ${t.p50} | ${t.p99} | ${t.errors} |`);
  }
  console.log(`host after cleanup: ${end.procs} processes, ${end.fds} open fds`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
