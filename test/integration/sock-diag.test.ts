import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createProcResolver } from '../../src/guard/attribution/index.js';
import { addressToKernelHex, findRowsByLocal, TCP_STATES } from '../../src/guard/attribution/proc-parse.js';
import { loadSockDiag, type SockDiag } from '../../src/guard/attribution/sock-diag.js';
import { connectionInfo } from '../../src/guard/attribution/types.js';
import { waitFor } from '../support/wait.js';

/**
 * The native sock_diag addon (native/addon) against this machine's kernel: exact lookups of real
 * loopback sockets, checked against /proc/net/tcp; argument errors; and the resolver's use of it,
 * including its fallback to /proc when the kernel refuses. `npm install` builds the addon; set
 * IMDSGUARD_SKIP_NATIVE=1 to run without it (the addon tests are then skipped, loudly).
 */

const SKIP = process.env.IMDSGUARD_SKIP_NATIVE === '1';
const PY = '/usr/bin/python3';
const endian = endianness() === 'BE' ? 'BE' : 'LE';

let diag: SockDiag;
let server: Server;
let port: number;
const accepted: Socket[] = [];
const children: ChildProcess[] = [];

function tcpRow(table: 'tcp' | 'tcp6', address: string, localPort: number) {
  const hex = addressToKernelHex(address, endian) as string;
  return findRowsByLocal(readFileSync(`/proc/net/${table}`, 'latin1'), hex, localPort).find(
    (r) => r.state === TCP_STATES.ESTABLISHED,
  );
}

async function clientOf(host: string, to: number): Promise<Socket> {
  const s = connect(to, host);
  await new Promise<void>((res, rej) => {
    s.once('connect', () => res());
    s.once('error', rej);
  });
  return s;
}

/** Waits until the server has accepted `count` connections in all; returns the last of them. */
async function waitAccepted(count: number): Promise<Socket> {
  await waitFor(() => accepted.length >= count, `${count} connections in all`);
  return accepted[count - 1] as Socket;
}

const v4 = (a: string) => Uint8Array.from(a.split('.').map(Number));
const LOOP6 = Uint8Array.from([...Array(15).fill(0), 1]);

beforeAll(async () => {
  if (SKIP) {
    console.warn('skipping the sock_diag addon tests: IMDSGUARD_SKIP_NATIVE=1');
    return;
  }
  const loaded = loadSockDiag();
  if (!loaded.diag) {
    throw new Error(`the sock_diag addon is not usable (${loaded.reason}); run npm run build:native`);
  }
  diag = loaded.diag;
  server = createServer((s) => {
    s.on('error', () => {});
    accepted.push(s);
  });
  await new Promise<void>((res) => server.listen(0, '::', () => res()));
  port = (server.address() as { port: number }).port;
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

afterAll(() => {
  for (const s of accepted) s.destroy();
  server?.close();
});

describe.skipIf(SKIP)('the sock_diag addon on this kernel', () => {
  it('finds an IPv4 client socket by its 4-tuple: state, uid and the inode /proc/net/tcp shows', async () => {
    const c = await clientOf('127.0.0.1', port);
    try {
      const answer = diag.lookup(4, v4('127.0.0.1'), c.localPort as number, v4('127.0.0.1'), port);
      const row = tcpRow('tcp', '127.0.0.1', c.localPort as number);
      expect(row).toBeDefined();
      expect(answer).toEqual([TCP_STATES.ESTABLISHED, process.getuid?.(), row?.inode]);
      // The wrong peer port is another socket: none.
      expect(diag.lookup(4, v4('127.0.0.1'), c.localPort as number, v4('127.0.0.1'), port + 1)).toBeNull();
    } finally {
      c.destroy();
    }
  });

  it('finds an IPv6 client socket (::1)', async () => {
    const c = await clientOf('::1', port);
    try {
      const answer = diag.lookup(6, LOOP6, c.localPort as number, LOOP6, port);
      const row = tcpRow('tcp6', '::1', c.localPort as number);
      expect(answer).toEqual([TCP_STATES.ESTABLISHED, process.getuid?.(), row?.inode]);
    } finally {
      c.destroy();
    }
  });

  it('answers null for a tuple no socket has, many times over without leaking or blocking', () => {
    for (let i = 0; i < 10_000; i++) {
      expect(diag.lookup(4, v4('127.0.0.1'), 1 + (i % 1000), v4('127.0.0.2'), 9)).toBeNull();
    }
  });

  it('refuses bad arguments with a TypeError naming the problem, never a crash', () => {
    const lo = v4('127.0.0.1');
    const call = (...args: unknown[]) => (diag.lookup as (...a: unknown[]) => unknown)(...args);
    expect(() => call(5, lo, 1, lo, 1)).toThrow(/family must be 4 or 6/);
    expect(() => call(4, Buffer.alloc(3), 1, lo, 1)).toThrow(/Buffers of 4/);
    expect(() => call(6, lo, 1, lo, 1)).toThrow(/Buffers of 4 \(family 4\) or 16/);
    expect(() => call(4, lo, 70_000, lo, 1)).toThrow(/ports must be integers/);
    expect(() => call(4, lo, 1)).toThrow(/takes 5 arguments/);
    expect(() => call(4, 'x', 1, lo, 1)).toThrow(TypeError);
  });

  it('IMDSGUARD_SOCK_DIAG=off turns it off, with the reason', () => {
    expect(loadSockDiag({ IMDSGUARD_SOCK_DIAG: 'off' })).toEqual({
      reason: 'disabled by IMDSGUARD_SOCK_DIAG=off',
    });
  });
});

// The resolver tests start a real client (python) each; the addon tests run in-process.
vi.setConfig({ testTimeout: 30_000 });

describe.skipIf(SKIP)('the resolver with sock_diag', () => {
  const info = connectionInfo;

  async function pyClient(host: string): Promise<{ child: ChildProcess; sock: Socket }> {
    const before = accepted.length;
    const child = spawn(
      PY,
      [
        '-c',
        `import socket,time\ns=socket.create_connection(('${host}',${port}))\ns.sendall(b'x')\ntime.sleep(300)`,
      ],
      { stdio: 'ignore' },
    );
    children.push(child);
    return { child, sock: await waitAccepted(before + 1) };
  }

  it('finds loopback clients without reading /proc/net/tcp at all', async () => {
    const r = createProcResolver({ budgetMs: 2000 });
    try {
      for (const host of ['127.0.0.1', '::1']) {
        const { child, sock } = await pyClient(host);
        const caller = await r.resolve(info(sock));
        expect(caller).toMatchObject({ resolved: 'full', pid: child.pid, exe: realpathSync(PY) });
      }
      const st = r.stats();
      expect(st).toMatchObject({ socketSource: 'sock_diag', tableReads: 0, diagErrors: 0 });
      expect(st.diagHits).toBe(2);
    } finally {
      await r.close();
    }
  });

  it('finds a process that just started among the newest pids, without listing /proc', async () => {
    const r = createProcResolver({ budgetMs: 2000, refreshIntervalMs: 0 });
    try {
      // A busy machine may hand out many pids between the client's start and the lookup; the probe
      // walks only the newest few, so one of three tries must do.
      let probed = 0;
      for (let i = 0; i < 3 && probed === 0; i++) {
        const before = r.stats().newPidHits;
        const { child, sock } = await pyClient('127.0.0.1');
        expect(await r.resolve(info(sock))).toMatchObject({ resolved: 'full', pid: child.pid });
        probed = r.stats().newPidHits - before;
      }
      expect(probed).toBe(1);
    } finally {
      await r.close();
    }
  });

  it('the inline tier attributes every connection of a new multi-connection client', async () => {
    const r = createProcResolver({ inline: true, budgetMs: 50 });
    try {
      const before = accepted.length;
      const child = spawn(
        PY,
        [
          '-c',
          `import socket,time\ncs=[socket.create_connection(('127.0.0.1',${port})) for _ in range(3)]\nfor c in cs: c.sendall(b'x')\ntime.sleep(300)`,
        ],
        { stdio: 'ignore' },
      );
      children.push(child);
      await waitAccepted(before + 3);
      const socks = accepted.slice(before, before + 3);
      const callers = [];
      for (const sock of socks) callers.push(await r.resolve(info(sock)));
      const why = JSON.stringify({ callers, stats: r.stats() });
      // Never another process. A miss is the inline tier handing the lookup over (to the worker, in
      // the guard): on a host where other processes come and go, exited pid numbers above the
      // client's can end its walk down from the newest pid before it reaches the client.
      for (const c of callers) {
        if (c.pid !== child.pid) {
          expect(c.pid, why).toBeUndefined();
          expect(c.error, why).toMatch(/inline lookup/);
        }
      }
      // Once found, by a targeted scan of the newest pids (newest fds first: it reads the process's
      // other sockets on the way and indexes them), the later connections come from the index.
      const first = callers.findIndex((c) => c.pid === child.pid);
      expect(r.stats().tableReads, why).toBe(0);
      if (first >= 0) {
        expect(
          callers.slice(first).map((c) => c.pid),
          why,
        ).toEqual(Array(3 - first).fill(child.pid));
        expect(r.stats(), why).toMatchObject({ newPidHits: 1, indexHits: 2 - first });
      }
    } finally {
      await r.close();
    }
  });

  it('reuses a process description for its next connection, and describes afresh after an exec', async () => {
    const r = createProcResolver({ budgetMs: 2000 });
    try {
      // Two connections from python, then python execs curl, which makes a third; each step waits
      // for the test to have attributed the connection before.
      const start = accepted.length;
      const child = spawn(
        PY,
        [
          '-c',
          [
            'import socket, os, sys',
            `a = socket.create_connection(('127.0.0.1', ${port})); a.sendall(b'1')`,
            'sys.stdin.readline()',
            `b = socket.create_connection(('127.0.0.1', ${port})); b.sendall(b'2')`,
            'sys.stdin.readline()',
            `os.execv('/usr/bin/curl', ['curl', '-s', '--max-time', '60', 'http://127.0.0.1:${port}/after-exec'])`,
          ].join('\n'),
        ],
        { stdio: ['pipe', 'ignore', 'ignore'] },
      );
      children.push(child);
      const first = await r.resolve(info(await waitAccepted(start + 1)));
      expect(first).toMatchObject({ pid: child.pid, exe: realpathSync(PY) });
      child.stdin?.write('\n');
      const second = await r.resolve(info(await waitAccepted(start + 2)));
      expect(second).toMatchObject({ pid: child.pid, exe: realpathSync(PY) });
      expect(r.stats().describeHits).toBe(1);
      child.stdin?.write('\n');
      const third = await r.resolve(info(await waitAccepted(start + 3)));
      expect(third).toMatchObject({ pid: child.pid, exe: realpathSync('/usr/bin/curl') });
      expect(third.cmdline).toContain('http://127.0.0.1:' + port + '/after-exec');
      expect(r.stats().describeHits).toBe(1);
    } finally {
      await r.close();
    }
  });

  it('falls back to /proc for good when the kernel refuses sock_diag, and says why', async () => {
    let calls = 0;
    const refusing: SockDiag = {
      lookup() {
        calls++;
        throw Object.assign(new Error('sock_diag socket: Operation not permitted'), { code: 'EPERM' });
      },
    };
    const r = createProcResolver({ budgetMs: 2000, sockDiag: refusing });
    try {
      const a = await pyClient('127.0.0.1');
      expect(await r.resolve(info(a.sock))).toMatchObject({ resolved: 'full', pid: a.child.pid });
      const b = await pyClient('127.0.0.1');
      expect(await r.resolve(info(b.sock))).toMatchObject({ resolved: 'full', pid: b.child.pid });
      expect(calls).toBe(1);
      const st = r.stats();
      expect(st.socketSource).toBe('proc');
      expect(st.sockDiagUnavailable).toMatch(/Operation not permitted/);
      expect(st.tableReads).toBeGreaterThan(0);
    } finally {
      await r.close();
    }
  });

  it('a transient error (no answer in time) falls back for that lookup only', async () => {
    let fail = true;
    const flaky: SockDiag = {
      lookup(...args) {
        if (fail) {
          fail = false;
          throw Object.assign(new Error('sock_diag receive: Resource temporarily unavailable'), {
            code: 'EAGAIN',
          });
        }
        return diag.lookup(...args);
      },
    };
    const r = createProcResolver({ budgetMs: 2000, sockDiag: flaky });
    try {
      const a = await pyClient('127.0.0.1');
      expect((await r.resolve(info(a.sock))).pid).toBe(a.child.pid);
      const b = await pyClient('127.0.0.1');
      expect((await r.resolve(info(b.sock))).pid).toBe(b.child.pid);
      expect(r.stats()).toMatchObject({ socketSource: 'sock_diag', diagErrors: 1, diagHits: 1 });
    } finally {
      await r.close();
    }
  });

  it('sockDiag: false reads /proc/net/tcp as before', async () => {
    const r = createProcResolver({ budgetMs: 2000, sockDiag: false });
    try {
      const { child, sock } = await pyClient('127.0.0.1');
      expect((await r.resolve(info(sock))).pid).toBe(child.pid);
      expect(r.stats()).toMatchObject({
        socketSource: 'proc',
        diagLookups: 0,
        sockDiagUnavailable: 'switched off',
      });
    } finally {
      await r.close();
    }
  });

  const threadedJs = new URL('../../dist/guard/attribution/threaded.js', import.meta.url).pathname;
  it.runIf(existsSync(threadedJs))(
    'the threaded resolver answers a known caller inline, without the worker',
    async () => {
      const m = (await import(threadedJs)) as typeof import('../../src/guard/attribution/threaded.js');
      const threaded = m.createThreadedProcResolver({ budgetMs: 2000, inlineBudgetMs: 5 });
      try {
        // A long-lived client opening a second connection: the second is found inline.
        const child = spawn(
          PY,
          [
            '-c',
            `import socket,time\na=socket.create_connection(('127.0.0.1',${port}))\na.sendall(b'1')\ntime.sleep(0.3)\nb=socket.create_connection(('127.0.0.1',${port}))\nb.sendall(b'2')\ntime.sleep(300)`,
          ],
          { stdio: 'ignore' },
        );
        children.push(child);
        const start = accepted.length;
        await waitAccepted(start + 2);
        const [s1, s2] = accepted.slice(start, start + 2) as [Socket, Socket];
        expect((await threaded.resolve(info(s1))).pid).toBe(child.pid);
        const before = (await threaded.stats())?.inline;
        expect((await threaded.resolve(info(s2))).pid).toBe(child.pid);
        const st = await threaded.stats();
        expect(st?.inline?.lookups).toBe((before?.lookups ?? 0) + 1);
        // Answered inline: the inline tier did not give up on it.
        expect(st?.inline?.unresolved).toBe(before?.unresolved);
      } finally {
        await threaded.close();
      }
      const off = m.createThreadedProcResolver({ budgetMs: 2000, inlineBudgetMs: 0 });
      try {
        expect((await off.stats())?.inline).toBeUndefined();
      } finally {
        await off.close();
      }
    },
  );
});
