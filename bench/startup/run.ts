/**
 * Start-up and footprint of the CLI and the guard, each beside bare Node from the same run.
 *
 * Rounds interleave every measurement (bare Node, --version, --help, the guard starting), so a
 * machine that gets busier mid-run slows the baseline and the subject alike; each figure is the
 * median of its rounds, and the ratio is of the medians.
 *
 * - `node -e ''`: exec to exit, the baseline of every ratio.
 * - `imdsguard --version`, `imdsguard --help`, `imdsguard guard --help`: exec to exit.
 * - the guard: exec to the "listening" line on stderr, and exec to the first successful TCP connect
 *   to its port (polled every millisecond). Two configurations: flags only (`guard --listen`), and
 *   the file `install` writes (YAML, events in SQLite, the admin endpoint).
 * - idle RSS (VmRSS of the guard process, its attribution worker thread included) once it has been
 *   listening for --settle ms, beside bare Node's (`node -e` with a timer) after the same time.
 * - N idle keep-alive connections (default 1,000): each sends one IMDSv2 GET and keeps its
 *   connection open (the stand-in answers keep-alive here: IMDS's `Connection: close` would end each
 *   one; the run fails if any closed); the guard's RSS after --settle ms, minus its idle RSS. With
 *   attribution on and off.
 *
 * Subjects: the CLI as npm installs it (`node dist/cli/main.js`), and the release executable when
 * it exists (release/imdsguard-linux-<arch>, `npm run release`) or is named with --exe.
 *
 *   npm run bench:startup
 *   npm run bench:startup -- --runs 20 --connections 1000 --settle 2000
 *   scripts/with-node --node 24 node build/bench/startup/run.js      (after npm run bench:build)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { arch, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
/** build/bench/startup -> the project root. */
const ROOT = join(here, '..', '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    connections: { type: 'string', default: '1000' },
    settle: { type: 'string', default: '2000' },
    exe: { type: 'string' },
    'no-exe': { type: 'boolean', default: false },
  },
});
const RUNS = Math.max(1, Number(args.runs));
const CONNECTIONS = Math.max(0, Number(args.connections));
const SETTLE_MS = Math.max(0, Number(args.settle));
const EXE =
  args['no-exe'] === true
    ? undefined
    : (args.exe ?? [join(ROOT, 'release', `imdsguard-linux-${arch()}`)].find((p) => existsSync(p)));

/** How to run imdsguard: argv before the command's own arguments. */
interface Subject {
  name: string;
  argv: readonly string[];
}

const SUBJECTS: Subject[] = [
  { name: 'node dist/cli/main.js', argv: [process.execPath, CLI] },
  ...(EXE ? [{ name: `release executable (${EXE.split('/').pop()})`, argv: [EXE] }] : []),
];

const dir = mkdtempSync(join(tmpdir(), 'imdsg-startup-'));
const children = new Set<ChildProcess>();

function start(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const [cmd, ...rest] = argv as [string, ...string[]];
  const child = spawn(cmd, rest, { stdio: ['ignore', 'ignore', 'pipe'], env });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Wall time from spawn to exit, ms. Fails when the command fails. */
function timeToExit(argv: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = start(argv);
    let err = '';
    child.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`));
    });
  });
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const a = srv.address();
  await new Promise((r) => srv.close(r));
  return typeof a === 'object' && a ? a.port : 0;
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface Started {
  child: ChildProcess;
  /** exec to the "listening" line, ms */
  listeningMs: number;
  /** exec to the first accepted TCP connection, ms */
  connectMs: number;
}

/** Starts a guard (or bare Node listening) and waits for both its line and a successful connect. */
async function startListening(argv: readonly string[], port: number): Promise<Started> {
  const t0 = performance.now();
  const child = start(argv);
  let stderr = '';
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr}`))),
  );
  exited.catch(() => {});
  const line = new Promise<number>((resolve) => {
    child.stderr?.on('data', (c: Buffer) => {
      const had = /listening/.test(stderr);
      stderr += c.toString();
      if (!had && /listening/.test(stderr)) resolve(performance.now() - t0);
    });
  });
  const connected = (async () => {
    const deadline = t0 + 60_000;
    while (performance.now() < deadline) {
      if (await tryConnect(port)) return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error(`${argv.join(' ')}: port ${port} never accepted`);
  })();
  const [listeningMs, connectMs] = await Promise.race([Promise.all([line, connected]), exited]);
  return { child, listeningMs, connectMs };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/** Memory only this process holds (USS: private clean + dirty pages; not the shared Node binary). */
function ussMb(pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
  return (kb('Private_Clean') + kb('Private_Dirty')) / 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * A metadata-service stand-in: 200 with a small body and `Connection: close`, as IMDS answers. The
 * guard passes `Connection: close` on to its client, so a client connection ends with its answer;
 * with `keepAlive` the stand-in answers `Connection: keep-alive` instead (it still closes the guard's
 * upstream connection, which asked for close), and the client's connection stays open and idle.
 */
async function upstream(keepAlive = false): Promise<{ server: Server; port: number }> {
  const server = createHttpServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', connection: keepAlive ? 'keep-alive' : 'close' });
    res.end('i-0123456789abcdef0');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return { server, port: typeof a === 'object' && a ? a.port : 0 };
}

let configs = 0;

/** The config `imdsguard install` writes (YAML; events in SQLite; the admin endpoint), one per guard. */
async function installedConfig(upPort: number): Promise<string> {
  const n = ++configs;
  const file = join(dir, `guard-${n}.yaml`);
  writeFileSync(
    file,
    [
      'guard:',
      `  upstream: http://127.0.0.1:${upPort}`,
      'events:',
      `  db: ${join(dir, `events-${n}.db`)}`,
      'admin:',
      `  listen: 127.0.0.1:${await freePort()}`,
      '',
    ].join('\n'),
  );
  return file;
}

/** Reference processes for the memory floor (CommonJS, as the release executable's script is). */
const FLOOR_HTTP = "require('node:http').createServer().listen(0, '127.0.0.1')";
const FLOOR_WORKER =
  "new (require('node:worker_threads').Worker)(\"require('node:worker_threads').parentPort.on('message', () => {})\", { eval: true })";

type Variant = 'flags' | 'installed';
const VARIANTS: readonly Variant[] = ['flags', 'installed'];
const LABEL: Record<Variant, string> = {
  flags: 'guard --listen',
  installed: 'guard --config (as installed)',
};

/** `guard` with flags only, or with the installed config; listening on `port`. */
async function guardArgv(
  subject: Subject,
  variant: Variant,
  port: number,
  upPort: number,
): Promise<string[]> {
  return variant === 'flags'
    ? [...subject.argv, 'guard', '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${upPort}`]
    : [...subject.argv, 'guard', '--config', await installedConfig(upPort), '--listen', `127.0.0.1:${port}`];
}

/** A config for the connections test: client connections stay open for a minute. */
function idleConfig(upPort: number, attribution: boolean): string {
  const file = join(dir, `idle-${attribution}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      guard: {
        upstream: `http://127.0.0.1:${upPort}`,
        attribution: { enabled: attribution },
        limits: { keepAliveTimeoutMs: 120_000, maxClientConnections: Math.max(4096, CONNECTIONS + 16) },
      },
    }),
  );
  return file;
}

const REQUEST =
  'GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n' +
  'X-aws-ec2-metadata-token: AQAEAbenchmarktoken==\r\nConnection: keep-alive\r\n\r\n';

/** Opens one keep-alive connection, sends one request, resolves once the answer is complete. */
function idleClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setEncoding('latin1');
    s.once('connect', () => s.write(REQUEST));
    s.on('data', (c: string) => {
      got += c;
      const head = got.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = Number(/content-length:\s*(\d+)/i.exec(got.slice(0, head))?.[1] ?? '0');
      if (got.length >= head + 4 + len) {
        if (!got.startsWith('HTTP/1.1 200')) reject(new Error(`unexpected answer: ${got.slice(0, 80)}`));
        else resolve(s);
      }
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the answer')));
  });
}

/** The guard with attribution on or off, holding connections open for two minutes, on `port`. */
function idleGuardArgv(subject: Subject, upPort: number, attribution: boolean) {
  return (port: number) => [
    ...subject.argv,
    'guard',
    '--config',
    idleConfig(upPort, attribution),
    '--listen',
    `127.0.0.1:${port}`,
  ];
}

/** The floor: a bare Node HTTP server answering keep-alive, as the guard does, on `port`. */
const FLOOR_KEEPALIVE = (port: number) => [
  process.execPath,
  '-e',
  `const s = require('node:http').createServer((q, r) => r.end('i-0123456789abcdef0')); s.keepAliveTimeout = 120000; s.listen(${port}, '127.0.0.1', () => process.stderr.write('listening\\n'))`,
];

async function connectionsDelta(
  argvFor: (port: number) => string[],
): Promise<{ idle: number; loaded: number }> {
  const port = await freePort();
  const g = await startListening(argvFor(port), port);
  const sockets: Socket[] = [];
  try {
    await sleep(SETTLE_MS);
    const idle = rssMb(g.child.pid as number);
    // 100 at a time: the guard sees them arrive as a busy host's clients would, not as one burst.
    for (let i = 0; i < CONNECTIONS; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, CONNECTIONS - i) }, () => idleClient(port)),
      );
      sockets.push(...batch);
    }
    await sleep(SETTLE_MS);
    const loaded = rssMb(g.child.pid as number);
    // What is measured is connections held open: none may have been closed in between.
    const open = sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
    if (open !== CONNECTIONS) throw new Error(`only ${open} of ${CONNECTIONS} connections stayed open`);
    return { idle, loaded };
  } finally {
    for (const s of sockets) {
      s.removeAllListeners('close');
      s.destroy();
    }
    await stop(g.child);
  }
}

interface Row {
  what: string;
  subject: string;
  value: number;
  baseline: number;
  baselineName: string;
  unit: 'ms' | 'MB';
  /** Shown as value/baseline (ratio) or value-baseline (delta). */
  compare: 'ratio' | 'delta';
  /** The target, in the unit of the comparison. */
  limit?: number;
}

async function main(): Promise<void> {
  const up = await upstream();
  process.stdout.write(
    `startup benchmark: node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${RUNS} rounds, settle ${SETTLE_MS} ms, ${CONNECTIONS} connections\n`,
  );
  for (const s of SUBJECTS) process.stdout.write(`subject: ${s.name}: ${s.argv.join(' ')}\n`);

  const samples = new Map<string, number[]>();
  const add = (key: string, v: number) => {
    const list = samples.get(key) ?? [];
    list.push(v);
    samples.set(key, list);
  };
  // Warm-up round (page cache), not counted.
  await timeToExit([process.execPath, '-e', '']);
  for (const s of SUBJECTS) await timeToExit([...s.argv, '--help']);

  for (let round = 0; round < RUNS; round++) {
    add('bare', await timeToExit([process.execPath, '-e', '']));
    {
      const port = await freePort();
      const b = await startListening(
        [
          process.execPath,
          '-e',
          `require('node:net').createServer().listen(${port}, '127.0.0.1', () => process.stderr.write('listening\\n'))`,
        ],
        port,
      );
      add('bare listen', b.listeningMs);
      await stop(b.child);
    }
    for (const s of SUBJECTS) {
      add(`${s.name} version`, await timeToExit([...s.argv, '--version']));
      add(`${s.name} help`, await timeToExit([...s.argv, '--help']));
      add(`${s.name} guard help`, await timeToExit([...s.argv, 'guard', '--help']));
      for (const variant of VARIANTS) {
        const port = await freePort();
        const g = await startListening(await guardArgv(s, variant, port, up.port), port);
        add(`${s.name} ${variant} listen`, g.listeningMs);
        add(`${s.name} ${variant} connect`, g.connectMs);
        await stop(g.child);
      }
    }
  }

  // Idle memory: every guard beside one bare Node, all measured after the same settle time.
  const bareIdle = start([process.execPath, '-e', 'setInterval(() => {}, 1 << 30)']);
  // The floor of any Node HTTP daemon with a worker thread, for reference: what a guard cannot go below.
  const floors = [
    { key: 'floor http', code: FLOOR_HTTP },
    { key: 'floor http+worker', code: `${FLOOR_HTTP}; ${FLOOR_WORKER}` },
  ].map((f) => ({ key: f.key, child: start([process.execPath, '-e', f.code]) }));
  const idleGuards: Array<{ key: string; child: ChildProcess }> = [...floors];
  for (const s of SUBJECTS) {
    for (const variant of VARIANTS) {
      const port = await freePort();
      const g = await startListening(await guardArgv(s, variant, port, up.port), port);
      idleGuards.push({ key: `${s.name} ${variant}`, child: g.child });
    }
  }
  await sleep(SETTLE_MS);
  const bareRss = rssMb(bareIdle.pid as number);
  const bareUss = ussMb(bareIdle.pid as number);
  for (const g of idleGuards) {
    add(`${g.key} rss`, rssMb(g.child.pid as number));
    add(`${g.key} uss`, ussMb(g.child.pid as number));
  }
  await stop(bareIdle);
  for (const g of idleGuards) await stop(g.child);

  const conn = new Map<string, { idle: number; loaded: number }>();
  if (CONNECTIONS > 0) {
    const keepAlive = await upstream(true);
    conn.set('floor', await connectionsDelta(FLOOR_KEEPALIVE));
    for (const s of SUBJECTS) {
      for (const attribution of [true, false]) {
        conn.set(
          `${s.name} ${attribution}`,
          await connectionsDelta(idleGuardArgv(s, keepAlive.port, attribution)),
        );
      }
    }
    await new Promise((r) => keepAlive.server.close(r));
  }
  await new Promise((r) => up.server.close(r));

  const m = (key: string) => median(samples.get(key) ?? [Number.NaN]);
  const ms = {
    baseline: m('bare'),
    baselineName: "node -e ''",
    unit: 'ms' as const,
    compare: 'ratio' as const,
  };
  const rows: Row[] = [
    { what: 'bare node listening (reference)', subject: 'node -e', value: m('bare listen'), ...ms },
  ];
  const floorMem = {
    subject: 'node -e',
    baseline: bareRss,
    baselineName: 'idle bare node',
    unit: 'MB' as const,
  };
  rows.push({
    what: 'idle RSS, an HTTP server (reference)',
    value: m('floor http rss'),
    ...floorMem,
    compare: 'ratio',
  });
  rows.push({
    what: 'idle RSS, an HTTP server and one idle worker thread (reference)',
    value: m('floor http+worker rss'),
    ...floorMem,
    compare: 'ratio',
  });
  const floorConn = conn.get('floor');
  if (floorConn) {
    rows.push({
      what: `RSS with ${CONNECTIONS} idle keep-alive connections, an HTTP server (reference)`,
      subject: 'node -e',
      value: floorConn.loaded,
      baseline: floorConn.idle,
      baselineName: 'the same server idle',
      unit: 'MB',
      compare: 'delta',
    });
  }
  for (const s of SUBJECTS) {
    const sub = { subject: s.name };
    rows.push({ what: '--version', ...sub, value: m(`${s.name} version`), ...ms, limit: 2 });
    rows.push({ what: '--help', ...sub, value: m(`${s.name} help`), ...ms, limit: 2 });
    rows.push({ what: 'guard --help', ...sub, value: m(`${s.name} guard help`), ...ms });
    for (const variant of VARIANTS) {
      rows.push({
        what: `${LABEL[variant]}: exec to "listening"`,
        ...sub,
        value: m(`${s.name} ${variant} listen`),
        ...ms,
        limit: 3,
      });
      rows.push({
        what: `${LABEL[variant]}: exec to first connect`,
        ...sub,
        value: m(`${s.name} ${variant} connect`),
        ...ms,
        limit: 3,
      });
    }
    for (const variant of VARIANTS) {
      const mem = { ...sub, unit: 'MB' as const, compare: 'ratio' as const };
      rows.push({
        what: `idle RSS, ${LABEL[variant]}, attribution on`,
        value: m(`${s.name} ${variant} rss`),
        baseline: bareRss,
        baselineName: 'idle bare node',
        ...mem,
        limit: 1.3,
      });
      rows.push({
        what: `idle private memory (USS), ${LABEL[variant]}, attribution on`,
        value: m(`${s.name} ${variant} uss`),
        baseline: bareUss,
        baselineName: 'idle bare node',
        ...mem,
      });
    }
    for (const attribution of [true, false]) {
      const c = conn.get(`${s.name} ${attribution}`);
      if (!c) continue;
      rows.push({
        what: `RSS with ${CONNECTIONS} idle keep-alive connections, attribution ${attribution ? 'on' : 'off'}`,
        ...sub,
        value: c.loaded,
        baseline: c.idle,
        baselineName: 'the same guard idle',
        unit: 'MB',
        compare: 'delta',
        ...(attribution ? { limit: 10 } : {}),
      });
    }
  }

  const fmt = (v: number, unit: string) => (unit === 'ms' ? v.toFixed(0) : v.toFixed(1));
  const out = [
    '',
    '| measurement | subject | value | baseline (same run) | ratio or added | target | met |',
    '| --- | --- | ---: | --- | ---: | --- | --- |',
  ];
  for (const r of rows) {
    const x = r.compare === 'ratio' ? r.value / r.baseline : r.value - r.baseline;
    const shown = r.compare === 'ratio' ? `${x.toFixed(2)}x` : `+${x.toFixed(1)} ${r.unit}`;
    const target =
      r.limit === undefined ? '' : r.compare === 'ratio' ? `<= ${r.limit}x` : `<= +${r.limit} ${r.unit}`;
    const met = r.limit === undefined ? '' : x <= r.limit ? 'yes' : 'NO';
    out.push(
      `| ${r.what} | ${r.subject} | ${fmt(r.value, r.unit)} ${r.unit} | ${r.baselineName}: ${fmt(r.baseline, r.unit)} ${r.unit} | ${shown} | ${target} | ${met} |`,
    );
  }
  process.stdout.write(
    `${out.join('\n')}\n\nload average at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
}

try {
  await main();
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
