/**
 * Guard throughput and latency against the same upstream direct, in one run.
 *
 * Runs inside a network namespace it creates (root needed) with net.ipv4.tcp_tw_reuse=1 and a wide
 * ip_local_port_range, as a busy host would be tuned: every proxied request opens a new upstream
 * connection, so without them the run measures TIME_WAIT, not the guard.
 *
 * The upstream answers `Connection: close` (as IMDS does). The guard runs as the real CLI with the
 * default policy plus path and caller rules, attribution on, and JSON-lines events to a file.
 * Load: wrk (Debian), 1 and 32 connections, an IMDSv2 GET with a token header.
 *
 *   npm run bench:guard                  (10 s per measurement)
 *   BENCH_SECONDS=5 npm run bench:guard
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const buildRoot = join(here, '..', '..');
/** The real CLI (npm run build); build/src cannot read package.json for its version. */
const CLI = join(buildRoot, '..', 'dist', 'cli', 'main.js');
const UPSTREAM = join(here, 'upstream.js');
const NAIVE = join(here, 'naive-proxy.js');
const SECONDS = Math.min(60, Math.max(2, Number(process.env['BENCH_SECONDS'] ?? '10')));
const INSIDE = process.argv.includes('--inside');

interface Measure {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

function wrk(url: string, connections: number, seconds: number): Measure {
  const out = execFileSync(
    'wrk',
    [
      `-t${connections === 1 ? 1 : 2}`,
      `-c${connections}`,
      `-d${seconds}s`,
      '--latency',
      '-H',
      'X-aws-ec2-metadata-token: AQAEAbenchmarktoken==',
      '-H',
      'User-Agent: aws-sdk-go-v2/1.30',
      `${url}/latest/meta-data/instance-id`,
    ],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
  );
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const p50 = /\n\s+50%\s+(\S+)/.exec(out)?.[1] ?? '';
  const p99 = /\n\s+99%\s+(\S+)/.exec(out)?.[1] ?? '';
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? '0');
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sock ? Number(sock[1]) + Number(sock[3]) + Number(sock[4]) : 0);
  return { rps, p50ms: toMs(p50), p99ms: toMs(p99), errors };
}

function waitLine(
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
  pattern: RegExp,
  ms: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}: ${buf}`)), ms);
    child[stream]?.setEncoding('utf8');
    child[stream]?.on('data', (c: string) => {
      buf += c;
      const m = pattern.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] ?? m[0]);
      }
    });
  });
}

async function inside(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'imdsg-bench-'));
  const children: ChildProcess[] = [];
  try {
    const up = spawn(process.execPath, [UPSTREAM, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(up);
    const upPort = Number(await waitLine(up, 'stdout', /^(\d+)\n/, 30_000));
    // Two guards, same rules and events: "guard" resolves the caller beside each request (for its
    // events); "guard+caller-rule" also has an exe rule, so every decision waits for attribution.
    const guards: Array<{
      name: string;
      port: number;
      events: string;
      attribution: boolean;
      callerRule: boolean;
    }> = [
      {
        name: 'guard, attribution off',
        port: 16924,
        events: join(dir, 'events-0.jsonl'),
        attribution: false,
        callerRule: false,
      },
      {
        name: 'guard',
        port: 16925,
        events: join(dir, 'events-a.jsonl'),
        attribution: true,
        callerRule: false,
      },
      {
        name: 'guard+caller-rule',
        port: 16926,
        events: join(dir, 'events-b.jsonl'),
        attribution: true,
        callerRule: true,
      },
    ];
    for (const g of guards) {
      const config = join(dir, `guard-${g.port}.yaml`);
      const callerRule = g.callerRule;
      writeFileSync(
        config,
        [
          'guard:',
          `  listen: ["127.0.0.1:${g.port}"]`,
          `  upstream: http://127.0.0.1:${upPort}`,
          '  rules:',
          '    - name: creds-v2-only',
          '      path: /latest/meta-data/iam/security-credentials/',
          '      version: v1',
          '      action: deny',
          '    - name: no-user-data-v1',
          '      path: /latest/user-data',
          '      version: v1',
          '      action: deny',
          ...(callerRule ? ['    - name: no-curl', '      exe: /usr/bin/curl', '      action: deny'] : []),
          ...(g.attribution ? [] : ['  attribution:', '    enabled: false']),
          '  limits:',
          '    maxUpstreamConnections: 256',
          '',
        ].join('\n'),
      );
      const child = spawn(process.execPath, [CLI, 'guard', '--config', config, '--events', g.events], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.push(child);
      await waitLine(child, 'stderr', /listening on/, 30_000);
      child.stderr?.on('data', (c: string) => process.stderr.write(`${g.name}: ${c}`));
      child.on('exit', (code) => process.stderr.write(`${g.name} exited (${code})\n`));
    }
    const naive = spawn(process.execPath, [NAIVE, '0', String(upPort)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(naive);
    const naivePort = Number(await waitLine(naive, 'stdout', /^(\d+)\n/, 30_000));
    const targets = [
      { name: 'direct', url: `http://127.0.0.1:${upPort}` },
      { name: 'naive node proxy', url: `http://127.0.0.1:${naivePort}` },
      ...guards.map((g) => ({ name: g.name, url: `http://127.0.0.1:${g.port}` })),
    ];
    // warm up every path (JIT, caches)
    for (const t of targets) wrk(t.url, 8, 2);
    const rows: Array<{ c: number; target: string; m: Measure }> = [];
    for (const c of [1, 32])
      for (const t of targets) rows.push({ c, target: t.name, m: wrk(t.url, c, SECONDS) });
    const summaries = guards.map((g) => {
      const lines = readFileSync(g.events, 'utf8').split('\n').filter(Boolean);
      const last = JSON.parse(lines[lines.length - 1] ?? '{}') as {
        rule?: string;
        caller?: { resolved?: string; exe?: string; error?: string };
        attributionMs?: number;
      };
      return `${g.name}: ${lines.length} events, last rule ${last.rule ?? '?'}, caller ${last.caller?.resolved ?? 'off'} ${last.caller?.exe ?? last.caller?.error ?? ''}`;
    });
    const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
    const table = [
      '| connections | target | requests/s | p50 ms | p99 ms | errors | vs direct |',
      '| ---: | --- | ---: | ---: | ---: | ---: | --- |',
    ];
    for (const r of rows) {
      const d = rows.find((x) => x.c === r.c && x.target === 'direct')?.m as Measure;
      const cmp =
        r.target === 'direct'
          ? ''
          : `${fmt(r.m.rps / d.rps, 2)}x req/s, ${r.m.p50ms - d.p50ms >= 0 ? '+' : ''}${fmt(r.m.p50ms - d.p50ms, 3)} ms p50`;
      table.push(
        `| ${r.c} | ${r.target} | ${fmt(r.m.rps)} | ${fmt(r.m.p50ms, 3)} | ${fmt(r.m.p99ms, 3)} | ${r.m.errors} | ${cmp} |`,
      );
    }
    process.stdout.write(`${table.join('\n')}\n\n${summaries.join('\n')}\n`);
    for (const g of guards) {
      const one = rows.find((r) => r.c === 1 && r.target === g.name)?.m;
      const oneD = rows.find((r) => r.c === 1 && r.target === 'direct')?.m;
      const many = rows.find((r) => r.c === 32 && r.target === g.name)?.m;
      const manyD = rows.find((r) => r.c === 32 && r.target === 'direct')?.m;
      const ratio = many && manyD ? many.rps / manyD.rps : Number.NaN;
      const added = one && oneD ? one.p50ms - oneD.p50ms : Number.NaN;
      if ((one?.errors ?? 0) + (many?.errors ?? 0) > 0) {
        process.stdout.write(
          `${g.name}: targets not judged: ${(one?.errors ?? 0) + (many?.errors ?? 0)} requests were refused or failed (see the events)\n`,
        );
        continue;
      }
      process.stdout.write(
        `${g.name}: 32 connections >= 0.6x direct: ${fmt(ratio, 2)}x ${ratio >= 0.6 ? 'MET' : 'MISSED'}; ` +
          `1 connection < 0.5 ms added p50: +${fmt(added, 3)} ms ${added < 0.5 ? 'MET' : 'MISSED'}\n`,
      );
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function outside(): void {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench:guard needs root (it creates a network namespace and sets its sysctls)\n');
    process.exitCode = 2;
    return;
  }
  const ns = `imdsg-bench-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
    execFileSync('ip', [
      'netns',
      'exec',
      ns,
      'sysctl',
      '-q',
      '-w',
      'net.ipv4.ip_local_port_range=1024 65535',
    ]);
    process.stdout.write(
      `guard benchmark: ${SECONDS} s per measurement, wrk, netns ${ns} (tcp_tw_reuse=1, ports 1024-65535), node ${process.version}\n\n`,
    );
    execFileSync('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--inside'], {
      stdio: 'inherit',
      timeout: (SECONDS * 4 + 120) * 1000,
    });
  } finally {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
        .split(/\s+/)
        .filter(Boolean);
      for (const p of pids) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          // gone
        }
      }
    } catch {
      // namespace gone
    }
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

if (INSIDE) await inside();
else outside();
