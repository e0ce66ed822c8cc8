import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createProcResolver, type ProcResolver } from '../../src/guard/attribution/index.js';
import { asyncProcIo } from '../../src/guard/attribution/proc-io.js';
import { type Caller, connectionInfo } from '../../src/guard/attribution/types.js';
import { testTimeLeft } from '../support/wait.js';

/**
 * The resolver on this machine's real /proc: loopback servers, real client processes (curl, python,
 * node), over 127.0.0.1 and ::1, as another uid when the test runs as root.
 */

const isRoot = process.getuid?.() === 0;
const PY = '/usr/bin/python3';
const CURL = '/usr/bin/curl';
const NOBODY = 65534;

function hasV6Loopback(): boolean {
  try {
    execFileSync(PY, ['-c', "import socket; s=socket.socket(socket.AF_INET6); s.bind(('::1',0))"], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

interface Listening {
  server: Server;
  port: number;
  host: string;
  next(): Promise<Socket>;
}

async function listen(host: string): Promise<Listening> {
  const waiting: Array<(s: Socket) => void> = [];
  const queued: Socket[] = [];
  const server = createServer((s) => {
    s.on('error', () => {});
    const w = waiting.shift();
    if (w) w(s);
    else queued.push(s);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, host, () => res());
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return {
    server,
    port: addr.port,
    host,
    next: () => {
      const q = queued.shift();
      if (q) return Promise.resolve(q);
      return new Promise<Socket>((res, rej) => {
        const t = setTimeout(
          () => rej(new Error('no connection before the test timeout')),
          testTimeLeft() ?? 60_000,
        );
        waiting.push((s) => {
          clearTimeout(t);
          res(s);
        });
      });
    },
  };
}

const info = connectionInfo;

const children: ChildProcess[] = [];
function start(cmd: string, args: string[], asNobody = false): ChildProcess {
  const argv = asNobody
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', cmd, ...args]
    : [cmd, ...args];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'ignore', 'ignore'] });
  children.push(child);
  return child;
}

/** A python client that connects, sends a line, and waits (or exits at once when exitAfterSend). */
function pyClient(host: string, port: number, exitAfterSend = false): string[] {
  const family = host.includes(':') ? 'socket.AF_INET6' : 'socket.AF_INET';
  return [
    '-c',
    `import socket,time\ns=socket.socket(${family})\ns.connect(('${host}',${port}))\ns.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n${exitAfterSend ? '' : 'time.sleep(300)'}`,
  ];
}

function nodeClient(host: string, port: number): string[] {
  return [
    '-e',
    `require('net').connect(${port}, '${host}', function(){ this.write('x'); }); setTimeout(()=>{}, 20000)`,
  ];
}

let resolver: ProcResolver;
let v4: Listening;
let v6: Listening | undefined;

beforeAll(async () => {
  v4 = await listen('127.0.0.1');
  if (hasV6Loopback()) v6 = await listen('::1');
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  v4.server.close();
  v6?.server.close();
});

const real = (p: string) => realpathSync(p);

// Both ways of finding the client's socket: sock_diag (the native addon, when built) and the
// /proc/net/tcp tables (without the addon, and for clients sock_diag cannot see). Without the addon
// (IMDSGUARD_SKIP_NATIVE=1) the sock_diag half is skipped, which fails a run that must run it all.
const SKIP_NATIVE = process.env.IMDSGUARD_SKIP_NATIVE === '1';
const SOCKET_SOURCES = ['sock_diag', 'proc'] as const;

// Each test starts one or two real clients (curl, python, node) and resolves their sockets.
vi.setConfig({ testTimeout: 30_000 });

describe.each(SOCKET_SOURCES)('attribution on the real /proc (sockets found by %s)', (source) => {
  const skipped = source === 'sock_diag' && SKIP_NATIVE;
  beforeEach((ctx) => {
    if (skipped) ctx.skip();
  });
  beforeAll(() => {
    // A generous budget: these tests check facts, not timing, and the machine may be busy.
    resolver = createProcResolver(
      source === 'proc' ? { budgetMs: 2000, sockDiag: false } : { budgetMs: 2000 },
    );
  });
  afterAll(async () => {
    if (!skipped) expect(resolver.stats().socketSource).toBe(source);
    await resolver.close();
  });

  it('curl over 127.0.0.1: pid, exe, cmdline, uid, parent', async () => {
    const child = start(CURL, ['-s', '--max-time', '15', `http://127.0.0.1:${v4.port}/latest/meta-data/`]);
    const s = await v4.next();
    const caller = await resolver.resolve(info(s));
    expect(caller.resolved).toBe('full');
    expect(caller.pid).toBe(child.pid);
    expect(caller.exe).toBe(real(CURL));
    expect(caller.cmdline).toContain(`http://127.0.0.1:${v4.port}/latest/meta-data/`);
    expect(caller.uid).toBe(process.getuid?.());
    expect(caller.netns).toBe('host');
    expect(caller.parents?.[0]).toEqual({ pid: process.pid, exe: real(process.execPath) });
    expect(caller.error).toBeUndefined();
  });

  it.runIf(isRoot)('python as nobody over 127.0.0.1: uid 65534 and the user name', async () => {
    const child = start(PY, pyClient('127.0.0.1', v4.port), true);
    const s = await v4.next();
    const caller = await resolver.resolve(info(s));
    expect(caller).toMatchObject({
      resolved: 'full',
      pid: child.pid,
      exe: real(PY),
      uid: NOBODY,
      user: 'nobody',
    });
  });

  it.runIf(isRoot)('node as nobody over ::1 (IPv6)', async () => {
    if (!v6) return expect.fail('::1 is not available on this machine');
    const child = start(process.execPath, nodeClient('::1', v6.port), true);
    const s = await v6.next();
    expect(s.remoteFamily).toBe('IPv6');
    const caller = await resolver.resolve(info(s));
    expect(caller).toMatchObject({
      resolved: 'full',
      pid: child.pid,
      exe: real(process.execPath),
      uid: NOBODY,
      user: 'nobody',
    });
  });

  it('curl and python over ::1', async () => {
    if (!v6) return expect.fail('::1 is not available on this machine');
    const curl = start(CURL, ['-s', '-g', '--max-time', '15', `http://[::1]:${v6.port}/`]);
    const s1 = await v6.next();
    expect((await resolver.resolve(info(s1))).pid).toBe(curl.pid);
    const py = start(PY, pyClient('::1', v6.port));
    const s2 = await v6.next();
    const caller = await resolver.resolve(info(s2));
    expect(caller).toMatchObject({ resolved: 'full', pid: py.pid, exe: real(PY) });
  });

  it('an IPv4 client through a dual-stack listener (::ffff:127.0.0.1)', async () => {
    const dual = await listen('::');
    try {
      const child = start(PY, pyClient('127.0.0.1', dual.port));
      const s = await dual.next();
      expect(s.remoteAddress).toBe('::ffff:127.0.0.1');
      const caller = await resolver.resolve(info(s));
      expect(caller).toMatchObject({ resolved: 'full', pid: child.pid, exe: real(PY) });
    } finally {
      dual.server.close();
    }
  });

  it('a dual-stack AF_INET6 client connecting to an IPv4 listener (mapped, found in tcp6)', async () => {
    const child = start(PY, [
      '-c',
      `import socket,time\ns=socket.socket(socket.AF_INET6)\ns.connect(('::ffff:127.0.0.1',${v4.port}))\ns.sendall(b'x')\ntime.sleep(300)`,
    ]);
    const s = await v4.next();
    expect(s.remoteAddress).toBe('127.0.0.1');
    const caller = await resolver.resolve(info(s));
    expect(caller).toMatchObject({ resolved: 'full', pid: child.pid, exe: real(PY) });
  });

  it('a process that exits before the lookup: a Caller with what is known, never a throw', async () => {
    const child = start(PY, pyClient('127.0.0.1', v4.port, true), isRoot);
    const s = await v4.next();
    await new Promise<void>((res) => {
      if (child.exitCode !== null) res();
      else child.once('exit', () => res());
    });
    const caller = await resolver.resolve(info(s));
    expect(caller.resolved).not.toBe('full');
    expect(caller.pid).toBeUndefined();
    expect(caller.error).toMatch(/closed|exited/);
    // The orphaned socket still carries its owner's uid, until the kernel turns it into a timewait
    // socket (FIN_WAIT2 once the guard side has acknowledged the FIN), which reports uid 0 for
    // anyone: then the uid is unknown. Never root for nobody's socket.
    if (isRoot) expect([NOBODY, undefined]).toContain(caller.uid);
  });

  it('a long-lived client: the second connection is found among recent callers', async () => {
    const child = start(PY, [
      '-c',
      `import socket,sys,time\na=socket.create_connection(('127.0.0.1',${v4.port}))\na.sendall(b'1')\nsys.stdin.readline()\nb=socket.create_connection(('127.0.0.1',${v4.port}))\nb.sendall(b'2')\ntime.sleep(300)`,
    ]);
    const s1 = await v4.next();
    expect((await resolver.resolve(info(s1))).pid).toBe(child.pid);
    const before = resolver.stats();
    // The second connection is made once the first is attributed.
    child.stdin?.write('\n');
    const s2 = await v4.next();
    const second = await resolver.resolve(info(s2));
    expect(second.pid, JSON.stringify({ second, stats: resolver.stats() })).toBe(child.pid);
    const after = resolver.stats();
    expect(after.probeHits + after.recentHits + after.indexHits).toBe(
      before.probeHits + before.recentHits + before.indexHits + 1,
    );
    expect(after.freshHits + after.scanHits).toBe(before.freshHits + before.scanHits);
  });

  it('a caller holding 1,000 sockets: its next connection is found with a handful of fd reads, not 1,000', async () => {
    // 500 connected pairs inside the caller, then a connection to us; then the next one, after
    // closing the first (the fd comes back), and a third while the second stays open (the next fd).
    const child = start(PY, [
      '-c',
      [
        'import socket,sys,time',
        "srv=socket.socket(); srv.bind(('127.0.0.1',0)); srv.listen(600)",
        'held=[]',
        'for _ in range(500):',
        '    c=socket.create_connection(srv.getsockname()); a,_=srv.accept(); held+=[c,a]',
        `a=socket.create_connection(('127.0.0.1',${v4.port})); a.sendall(b'1')`,
        'sys.stdin.readline(); a.close()',
        `b=socket.create_connection(('127.0.0.1',${v4.port})); b.sendall(b'2')`,
        'sys.stdin.readline()',
        `c=socket.create_connection(('127.0.0.1',${v4.port})); c.sendall(b'3')`,
        'time.sleep(300)',
      ].join('\n'),
    ]);
    const s1 = await v4.next();
    expect((await resolver.resolve(info(s1))).pid).toBe(child.pid);
    // Count the reads of this caller's fd links (other processes may be looked at too on a busy
    // machine: not counted).
    const fdDir = `/proc/${child.pid}/fd`;
    let reads = 0;
    const readlink = asyncProcIo.readlink;
    asyncProcIo.readlink = (path) => {
      if (path.startsWith(`${fdDir}/`)) reads++;
      return readlink(path);
    };
    try {
      for (const label of ['the same fd again', 'the next fd']) {
        child.stdin?.write('\n');
        const s = await v4.next();
        const before = reads;
        const st0 = resolver.stats();
        const c = await resolver.resolve(info(s));
        const st = resolver.stats();
        expect(c.pid, label).toBe(child.pid);
        // The first lookup read the caller's whole fd table; the later ones only where the new
        // socket is likely to be (a probe), or the fd the index names (which the prefetch filled
        // while the /proc table was read).
        expect(st.probeHits + st.indexHits, label).toBe(st0.probeHits + st0.indexHits + 1);
        // Without sock_diag, the first lookup's prefetch may still be reading the caller in the
        // background: only the sock_diag lookup is counted read by read.
        if (source === 'sock_diag')
          expect(reads - before, `${label}: ${JSON.stringify(st)}`).toBeLessThan(40);
      }
    } finally {
      asyncProcIo.readlink = readlink;
    }
  });

  it('a client opening many connections at once: all attributed, without one scan per connection', async () => {
    const n = 16;
    const child = start(PY, [
      '-c',
      `import socket,time\ncs=[socket.create_connection(('127.0.0.1',${v4.port})) for _ in range(${n})]\nfor c in cs: c.sendall(b'x')\ntime.sleep(300)`,
    ]);
    const socks: Socket[] = [];
    for (let i = 0; i < n; i++) socks.push(await v4.next());
    // Count the scans of this client's fds (the resolver reads /proc through asyncProcIo). Other
    // processes may be scanned too on a busy machine (new processes of other tests): not counted.
    const fdDir = `/proc/${child.pid}/fd`;
    let scans = 0;
    const readdir = asyncProcIo.readdir;
    asyncProcIo.readdir = (path) => {
      if (path === fdDir) scans++;
      return readdir(path);
    };
    try {
      // Staggered, as requests arrive at a guard: each lookup starts while earlier ones are scanning.
      const callers = await Promise.all(
        socks.map(
          (s, i) =>
            new Promise<Caller>((res) => {
              setTimeout(() => res(resolver.resolve(info(s))), i);
            }),
        ),
      );
      expect(callers.map((c) => c.pid)).toEqual(Array(n).fill(child.pid));
    } finally {
      asyncProcIo.readdir = readdir;
    }
    // One scan per connection would be n; one scan indexes all n sockets. Reading /proc/net/tcp,
    // lookups also prefetch likely owners while the table is walked, which may scan it again.
    expect(scans, JSON.stringify(resolver.stats())).toBeGreaterThan(0);
    expect(scans, JSON.stringify(resolver.stats())).toBeLessThan(source === 'sock_diag' ? 4 : n);
  });

  const threadedJs = new URL('../../dist/guard/attribution/threaded.js', import.meta.url).pathname;
  // Registered for one source only (for the other it would be a test that always skips).
  const itThreaded = source === 'sock_diag' ? it.runIf(existsSync(threadedJs)) : undefined;
  itThreaded?.('the worker-thread resolver (compiled) attributes the same way', async () => {
    const m = (await import(threadedJs)) as typeof import('../../src/guard/attribution/threaded.js');
    const threaded = m.createThreadedProcResolver({ budgetMs: 2000 });
    const child = start(CURL, ['-s', '--max-time', '15', `http://127.0.0.1:${v4.port}/threaded`]);
    const s = await v4.next();
    try {
      const caller = await threaded.resolve(info(s));
      expect(caller).toMatchObject({ resolved: 'full', pid: child.pid, exe: real(CURL) });
    } finally {
      await threaded.close();
    }
    // After close, a lookup answers at once instead of hanging.
    expect(await threaded.resolve(info(s))).toEqual({ resolved: 'none', error: 'attribution closed' });
  });

  const dist = new URL('../../dist/guard/attribution/index.js', import.meta.url).pathname;
  const itUnprivileged = source === 'proc' ? it.runIf(isRoot && existsSync(dist)) : undefined;
  itUnprivileged?.(
    'without permission to read other processes: partial with the uid and a reason',
    async () => {
      // The resolver itself runs as nobody and looks up a root-owned curl.
      const curl = start(CURL, ['-s', '--max-time', '15', `http://127.0.0.1:${v4.port}/`]);
      const s = await v4.next();
      const c = info(s);
      const script = `import(${JSON.stringify(dist)}).then(async (m) => { const r = m.createProcResolver({ refreshIntervalMs: 0, budgetMs: 5000 }); const c = await r.resolve(${JSON.stringify(c)}); process.stdout.write(JSON.stringify(c)); await r.close(); })`;
      const out = execFileSync(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script],
        {
          encoding: 'utf8',
          timeout: 15_000,
        },
      );
      const caller = JSON.parse(out);
      expect(caller.resolved).not.toBe('full');
      expect(caller.uid).toBe(0);
      expect(caller.user).toBe('root');
      expect(caller.error).toMatch(/permission denied/);
      expect(curl.pid).toBeGreaterThan(0);
    },
  );
});

describe.runIf(!SKIP_NATIVE && isRoot)(
  'the host proc filesystem mounted elsewhere (/host/proc in a container)',
  () => {
    it('keeps sock_diag, and names the caller through that root', async () => {
      // /proc/self/root/proc is this machine's proc filesystem under another path, as a DaemonSet that
      // mounts the host's /proc at /host/proc sees it.
      const r = createProcResolver({
        procRoot: '/proc/self/root/proc',
        budgetMs: 2000,
        refreshIntervalMs: 0,
      });
      try {
        const child = start(PY, pyClient('127.0.0.1', v4.port));
        const caller = await r.resolve(info(await v4.next()));
        expect(caller, caller.error).toMatchObject({ resolved: 'full', pid: child.pid, exe: real(PY) });
        expect(r.stats().sockDiagUnavailable).toBeUndefined();
        expect(r.stats().socketSource).toBe('sock_diag');
      } finally {
        await r.close();
      }
    });
  },
);
