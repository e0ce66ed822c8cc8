import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { requireBuild } from '../support/bin.js';
import { guardInNetnsSuite } from '../support/guard-netns-suite.js';
import { waitFor } from '../support/wait.js';

/**
 * The one-file release (`npm run release`, scripts/release/): built once here for this machine's
 * architecture, then the .deb is inspected with dpkg-deb, and the executable runs with no Node on
 * PATH: its embedded addon and attribution worker work, and the guard e2e in a network namespace
 * passes with it in place of `node dist/cli/main.js`.
 */
const ROOT = process.cwd();
const ARCH = process.arch === 'x64' ? 'amd64' : process.arch;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const supported =
  process.platform === 'linux' &&
  (process.arch === 'x64' || process.arch === 'arm64') &&
  spawnSync('dpkg-deb', ['--version']).status === 0;

/** Everything the file writes (the build is about 200 MB): removed in afterAll. */
let work = '';
let out = '';
let exe = '';
let deb = '';
/** A PATH with the tools the guard's tests need and no node. */
let noNodePath = '';

async function buildRelease(): Promise<void> {
  requireBuild();
  // 0755 all the way: the guard runs the executable as nobody.
  const dir = mkdtempSync(join(tmpdir(), 'imdsg-release-'));
  work = dir;
  chmodSync(dir, 0o755);
  out = join(dir, 'release');
  // Not execFileSync: a worker blocked for a minute loses vitest's RPC.
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      [
        join(ROOT, 'scripts', 'release', 'index.js'),
        '--arch',
        process.arch,
        '--out',
        out,
        '--deb-compression',
        'none',
      ],
      { cwd: ROOT, timeout: 540_000, maxBuffer: 16 * 1024 * 1024 },
      (err, _stdout, stderr) => (err ? reject(new Error(`the release build failed: ${stderr}`)) : resolve()),
    );
  });
  exe = join(out, `imdsguard-linux-${process.arch}`);
  deb = join(out, `imdsguard_${VERSION}_${ARCH}.deb`);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const tool of ['ip', 'setpriv']) {
    const where = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (where) symlinkSync(where, join(bin, tool));
  }
  chmodSync(bin, 0o755);
  noNodePath = bin;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });

interface Running {
  port: number;
  stderr: () => string;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `argv` (a guard, maybe behind unshare/sh exec) and waits for its start-up lines. */
async function startGuard(argv: string[], env: Record<string, string>): Promise<Running> {
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m && /\nimdsguard: attribution: [^\n]*\n/.test(stderr)) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error(`guard exited early: ${stderr}`)));
  });
  return {
    port,
    stderr: () => stderr,
    stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

// Once for the file: the .deb tests and the network namespace suite share the build.
beforeAll(async () => {
  if (supported) await buildRelease();
}, 600_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!supported)('the one-file release', () => {
  it('writes the executable, the .deb, the notices and their checksums', () => {
    expect(existsSync(exe)).toBe(true);
    expect(existsSync(deb)).toBe(true);
    const sums = readFileSync(join(out, 'SHA256SUMS'), 'utf8');
    for (const f of [
      `imdsguard-linux-${process.arch}`,
      `imdsguard_${VERSION}_${ARCH}.deb`,
      'THIRD-PARTY-NOTICES',
    ])
      expect(sums).toMatch(new RegExp(`^[0-9a-f]{64}  ${f.replace(/\./g, '\\.')}$`, 'm'));
    const notices = readFileSync(join(out, 'THIRD-PARTY-NOTICES'), 'utf8');
    expect(notices).toMatch(/^==== zod@\d/m);
    expect(notices).toMatch(/^==== commander@\d/m);
  });

  it('dpkg-deb --info: the package, its architecture, version and dependencies', () => {
    const info = sh('dpkg-deb', ['--info', deb]);
    expect(info).toMatch(/^ Package: imdsguard$/m);
    expect(info).toMatch(new RegExp(`^ Version: ${VERSION.replace(/\./g, '\\.')}$`, 'm'));
    expect(info).toMatch(new RegExp(`^ Architecture: ${ARCH}$`, 'm'));
    expect(info).toMatch(/^ Depends: libc6 \(>= 2\.\d+\), .*passwd$/m);
    expect(info).toMatch(/^ Recommends: nftables \| iptables$/m);
    const conffiles = sh('dpkg-deb', ['--info', deb, 'conffiles']);
    expect(conffiles.split('\n').filter(Boolean)).toEqual([
      '/etc/imdsguard/config.yaml',
      '/etc/imdsguard/env',
    ]);
    const postinst = sh('dpkg-deb', ['--info', deb, 'postinst']);
    expect(postinst).toContain('useradd --system --user-group --no-create-home');
    expect(postinst).toMatch(/ imdsguard$/m);
    // Nothing starts on install: enabling the guard is the administrator's decision.
    expect(postinst).not.toMatch(/^\s*[^#\s].*systemctl (enable|start)/m);
    const prerm = sh('dpkg-deb', ['--info', deb, 'prerm']);
    expect(prerm).toContain('/usr/bin/imdsguard uninstall --apply --rules-only');
  }, 60_000);

  it('dpkg-deb --contents: the executable, the unit, the config and the docs, owned by root', () => {
    const lines = sh('dpkg-deb', ['--contents', deb]).split('\n').filter(Boolean);
    const entry = (path: string) => lines.find((l) => l.endsWith(` .${path}`));
    expect(entry('/usr/bin/imdsguard')).toMatch(/^-rwxr-xr-x root\/root /);
    expect(entry('/lib/systemd/system/imdsguard.service')).toMatch(/^-rw-r--r-- root\/root /);
    expect(entry('/etc/imdsguard/config.yaml')).toMatch(/^-rw-r----- root\/root /);
    expect(entry('/etc/imdsguard/env')).toMatch(/^-rw-r----- root\/root /);
    expect(entry('/usr/share/doc/imdsguard/copyright')).toBeDefined();
    expect(lines.every((l) => / root\/root /.test(l))).toBe(true);
  }, 60_000);

  it('the unit runs the executable, with the hooks detecting the firewall backend on the host', () => {
    const unit = execFileSync('sh', [
      '-c',
      `dpkg-deb --fsys-tarfile "$1" | tar -xO ./lib/systemd/system/imdsguard.service`,
      'sh',
      deb,
    ]).toString();
    expect(unit).toMatch(
      /^ExecStart=\/usr\/bin\/imdsguard guard --config \/etc\/imdsguard\/config\.yaml --listen 127\.0\.0\.1:16925$/m,
    );
    expect(unit).toMatch(
      /^ExecStartPre=\+\/usr\/bin\/imdsguard install --apply --rules-only --user imdsguard /m,
    );
    expect(unit).not.toContain('--backend');
    expect(unit).toMatch(/^User=imdsguard$/m);
    const config = execFileSync('sh', [
      '-c',
      'dpkg-deb --fsys-tarfile "$1" | tar -xO ./etc/imdsguard/config.yaml',
      'sh',
      deb,
    ]).toString();
    // dpkg owns it: `imdsguard uninstall` keeps files that do not carry install's mark.
    expect(config.split('\n')[0]).toMatch(/^# Installed by the imdsguard package/);
  }, 60_000);

  it('the executable runs with no Node on PATH: version, help, and a usage error', () => {
    expect(spawnSync('sh', ['-c', 'command -v node'], { env: { PATH: noNodePath } }).status).not.toBe(0);
    const env = { PATH: noNodePath };
    expect(sh(exe, ['--version']).trim()).toBe(VERSION);
    const help = spawnSync(exe, ['--help'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('fleet');
    const bad = spawnSync(exe, ['guard', '--mode', 'nope'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('IMDSGUARD_E_USAGE');
  }, 60_000);

  it('the embedded addon and attribution worker work, and leave no file behind', async () => {
    const dir = mkdtempSync(join(work, 'run-'));
    const runtime = join(dir, 'run');
    mkdirSync(runtime, { mode: 0o700 });
    const config = join(dir, 'guard.json');
    const events = join(dir, 'events.jsonl');
    // Every lookup on the worker thread (no inline tier), with room for a loaded machine.
    writeFileSync(config, JSON.stringify({ guard: { attribution: { inlineBudgetMs: 0, timeoutMs: 5000 } } }));
    const guard = await startGuard(
      [
        exe,
        'guard',
        '--config',
        config,
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        'http://127.0.0.1:9',
        '--events',
        events,
      ],
      { PATH: noNodePath, IMDSGUARD_RUNTIME_DIR: runtime },
    );
    try {
      const port = guard.port;
      expect(guard.stderr()).toContain('attribution: sockets by sock_diag (native addon)');
      expect(readdirSync(runtime)).toEqual([]);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, path: '/latest/meta-data/', headers: { host: '169.254.169.254' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(401);
      let event: GuardEvent | undefined;
      await waitFor(() => {
        const text = existsSync(events) ? readFileSync(events, 'utf8') : '';
        const line = text.split('\n').find(Boolean);
        if (line) event = JSON.parse(line) as GuardEvent;
        return event !== undefined;
      }, 'the first event');
      // This test process made the request: the worker inside the executable named it.
      expect(event?.caller).toMatchObject({ resolved: 'full', pid: process.pid });
    } finally {
      expect(await guard.stop()).toBe(0);
    }
  }, 120_000);

  it.skipIf(process.getuid?.() !== 0)(
    'on a noexec runtime directory the addon is loaded from the next candidate',
    async () => {
      // A mount namespace of its own with a noexec tmpfs: the host's mounts are untouched.
      const guard = await startGuard(
        [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'd="$0" && mount -t tmpfs -o noexec,mode=0700 none "$d" && touch "$d/probe" && chmod +x "$d/probe" && ! "$d/probe" 2>/dev/null && IMDSGUARD_RUNTIME_DIR="$d" exec "$@"',
          mkdtempSync(join(work, 'noexec-')),
          exe,
          'guard',
          '--listen',
          '127.0.0.1:0',
          '--upstream',
          'http://127.0.0.1:9',
          '--events',
          '/dev/null',
        ],
        { PATH: `${noNodePath}:/usr/sbin:/usr/bin:/sbin:/bin` },
      );
      try {
        expect(guard.stderr()).toContain('attribution: sockets by sock_diag (native addon)');
      } finally {
        expect(await guard.stop()).toBe(0);
      }
    },
    120_000,
  );
});

describe.skipIf(!supported)('the release executable', () => {
  guardInNetnsSuite('with no Node on PATH, in a network namespace', () => ({
    argv: [exe],
    path: noNodePath,
  }));
});
