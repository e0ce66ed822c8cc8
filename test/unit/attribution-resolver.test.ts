import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProcResolver, type ProcResolverOptions } from '../../src/guard/attribution/index.js';
import { syncProcIo } from '../../src/guard/attribution/proc-io.js';
import { CONTAINER_NS, conn, DOCKER_ID, FakeProcTree, type Row } from '../support/fake-proc.js';

/**
 * The resolver against a fake /proc tree: every fact the resolver reports must come from the tree,
 * so each test changes one file and checks the answer follows.
 */

let dir: string;
let tree: FakeProcTree;
const resolvers: Array<{ close(): Promise<void> }> = [];

function resolver(extra: ProcResolverOptions = {}) {
  const r = createProcResolver({
    procRoot: tree.root,
    passwdPath: tree.passwd,
    refreshIntervalMs: 0,
    endianness: 'LE',
    // These tests check facts, not timing (the budget has its own test); the machine may be busy.
    budgetMs: 10_000,
    ...extra,
  });
  resolvers.push(r);
  return r;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imdsg-fakeproc-'));
  tree = new FakeProcTree(dir);
  // A small host: init, a shell, a daemon with a listening socket.
  tree.proc({ pid: 1, ppid: 0, uid: 0, exe: '/usr/lib/systemd/systemd', fds: { 0: '/dev/null' } });
  tree.proc({
    pid: 200,
    ppid: 1,
    uid: 1000,
    exe: '/usr/bin/bash',
    fds: { 0: '/dev/pts/0', 255: '/dev/pts/0' },
  });
  tree.proc({
    pid: 300,
    ppid: 1,
    uid: 0,
    exe: '/usr/sbin/sshd',
    fds: { 3: 'socket:[900]', 4: 'pipe:[901]' },
  });
});

afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('createProcResolver over a fake /proc', () => {
  it('attributes an IPv4 client: pid, exe, cmdline, uid, user, parents, host netns', async () => {
    tree.proc({
      pid: 4321,
      ppid: 200,
      uid: 1000,
      exe: '/usr/bin/curl',
      cmdline: ['curl', '-s', 'http://169.254.169.254/latest/meta-data/'],
      fds: { 0: '/dev/null', 1: 'pipe:[5]', 5: 'socket:[777001]' },
    });
    tree.tables(
      '',
      [
        ['0.0.0.0:22', '0.0.0.0:0', 0x0a, 0, 900],
        ['127.0.0.1:8080', '127.0.0.1:40000', 0x01, 0, 777002],
        ['127.0.0.1:40000', '127.0.0.1:8080', 0x01, 1000, 777001],
      ],
      [],
    );
    const caller = await resolver().resolve(conn('127.0.0.1', 40000));
    expect(caller).toEqual({
      resolved: 'full',
      pid: 4321,
      exe: '/usr/bin/curl',
      cmdline: ['curl', '-s', 'http://169.254.169.254/latest/meta-data/'],
      uid: 1000,
      user: 'alice',
      netns: 'host',
      // /proc/PID/stat field 22: with the pid, it names this process (the token ledger's holder)
      startTime: '100',
      parents: [
        { pid: 200, exe: '/usr/bin/bash' },
        { pid: 1, exe: '/usr/lib/systemd/systemd' },
      ],
    });
  });

  it('attributes an IPv6 client and an IPv4 client seen through a dual-stack listener', async () => {
    tree.proc({ pid: 50, ppid: 1, uid: 65534, exe: '/usr/bin/python3.11', fds: { 3: 'socket:[6001]' } });
    tree.proc({ pid: 51, ppid: 1, uid: 0, exe: '/usr/bin/node', fds: { 20: 'socket:[6002]' } });
    tree.tables(
      '',
      [['10.0.0.5:51000', '169.254.169.254:80', 0x01, 0, 6002]],
      [['[::1]:50000', '[::1]:8080', 0x01, 65534, 6001]],
    );
    const r = resolver();
    const v6 = await r.resolve(conn('::1', 50000, 6));
    expect(v6).toMatchObject({
      resolved: 'full',
      pid: 50,
      exe: '/usr/bin/python3.11',
      uid: 65534,
      user: 'nobody',
    });
    // An iptables REDIRECT: the client's socket still points at 169.254.169.254:80, not the guard port.
    const mapped = await r.resolve(conn('::ffff:10.0.0.5', 51000, 6));
    expect(mapped).toMatchObject({ resolved: 'full', pid: 51, exe: '/usr/bin/node', uid: 0, user: 'root' });
  });

  it('finds a dual-stack AF_INET6 client (mapped address in tcp6) for an IPv4 connection', async () => {
    tree.proc({ pid: 60, ppid: 1, uid: 1000, exe: '/usr/lib/jvm/bin/java', fds: { 9: 'socket:[7001]' } });
    tree.tables('', [], [['127.0.0.1:45000', '127.0.0.1:8080', 0x01, 1000, 7001]]);
    const caller = await resolver().resolve(conn('127.0.0.1', 45000));
    expect(caller).toMatchObject({ resolved: 'full', pid: 60, exe: '/usr/lib/jvm/bin/java' });
  });

  it('an older connection from the same port in tcp (TIME_WAIT, or elsewhere) does not hide the client in tcp6', async () => {
    tree.proc({ pid: 60, ppid: 1, uid: 1000, exe: '/usr/lib/jvm/bin/java', fds: { 9: 'socket:[7001]' } });
    tree.proc({ pid: 61, ppid: 1, uid: 1000, exe: '/usr/bin/other', fds: { 3: 'socket:[7002]' } });
    const v6 = [['127.0.0.1:45000', '127.0.0.1:8080', 0x01, 1000, 7001]] as Row[];
    // A TIME_WAIT row of the same local port, to another server (ports are reused).
    tree.tables('', [['127.0.0.1:45000', '127.0.0.1:9999', 0x06, 0, 0]], v6);
    expect(await resolver().resolve(conn('127.0.0.1', 45000))).toMatchObject({ resolved: 'full', pid: 60 });
    // A live AF_INET socket sharing the port, connected to another server.
    tree.tables('', [['127.0.0.1:45000', '127.0.0.1:9999', 0x01, 1000, 7002]], v6);
    expect(await resolver().resolve(conn('127.0.0.1', 45000))).toMatchObject({ resolved: 'full', pid: 60 });
    // The client's own row, closed (its process exited), in tcp6, and an unrelated live row in tcp:
    // the closed row is the answer, with its uid.
    tree.tables(
      '',
      [['127.0.0.1:45000', '127.0.0.1:9999', 0x01, 0, 7002]],
      [['127.0.0.1:45000', '127.0.0.1:8080', 0x08, 1000, 0]],
    );
    const closed = await resolver().resolve(conn('127.0.0.1', 45000));
    expect(closed).toMatchObject({ resolved: 'partial', uid: 1000 });
    expect(closed.error).toMatch(/already closed/);
    // Only the old row: the client is not there any more, and the answer says so.
    tree.tables('', [['127.0.0.1:45000', '127.0.0.1:9999', 0x06, 0, 0]], []);
    const gone = await resolver().resolve(conn('127.0.0.1', 45000));
    expect(gone.resolved).toBe('none');
    expect(gone.error).toMatch(/already closed/);
  });

  it('reports the container and a deleted executable', async () => {
    tree.proc({
      pid: 70,
      ppid: 1,
      uid: 0,
      exe: '/opt/agent (deleted)',
      cgroup: `0::/system.slice/docker-${DOCKER_ID}.scope\n`,
      fds: { 3: 'socket:[8001]' },
    });
    tree.tables('', [['172.17.0.1:41000', '169.254.169.254:80', 0x01, 0, 8001]], []);
    const caller = await resolver().resolve(conn('172.17.0.1', 41000));
    expect(caller).toMatchObject({
      resolved: 'full',
      exe: '/opt/agent',
      exeDeleted: true,
      container: { id: DOCKER_ID, runtime: 'docker' },
    });
  });

  it('finds a socket in another network namespace through a representative pid', async () => {
    tree.proc({
      pid: 800,
      ppid: 1,
      uid: 0,
      exe: '/usr/bin/sleep',
      netns: CONTAINER_NS,
      fds: { 0: '/dev/null' },
    });
    tree.proc({
      pid: 801,
      ppid: 800,
      uid: 1000,
      exe: '/usr/bin/curl',
      netns: CONTAINER_NS,
      fds: { 3: 'socket:[9001]' },
    });
    // The host table does not have it; the container namespace's table (readable via /proc/800/net) does.
    tree.tables('800', [['10.200.0.2:42000', '169.254.169.254:80', 0x01, 1000, 9001]], []);
    const r = resolver();
    const caller = await r.resolve(conn('10.200.0.2', 42000));
    expect(caller).toMatchObject({
      resolved: 'full',
      pid: 801,
      exe: '/usr/bin/curl',
      netns: 'other',
      user: 'alice',
    });
    expect(r.stats().otherNetnsRows).toBe(1);
  });

  it('searches other namespaces only for non-loopback addresses, and not again right after a miss', async () => {
    tree.proc({ pid: 850, ppid: 1, uid: 0, exe: '/usr/bin/sleep', netns: CONTAINER_NS });
    tree.tables('850', [], []);
    const r = resolver();
    await r.resolve(conn('127.0.0.1', 42100));
    // Loopback: the guard's own tables only (tcp, then tcp6 for a mapped dual-stack client).
    expect(r.stats().tableReads).toBe(2);
    await r.resolve(conn('10.200.0.9', 42101));
    // Own tcp + tcp6, then the container namespace's tcp + tcp6.
    expect(r.stats().tableReads).toBe(6);
    await r.resolve(conn('10.200.0.9', 42102));
    expect(r.stats().tableReads).toBe(8);
  });

  it('a closed socket (inode 0) yields the uid and an error, not a throw', async () => {
    tree.tables('', [['127.0.0.1:43000', '127.0.0.1:8080', 0x05, 65534, 0]], []);
    const caller = await resolver().resolve(conn('127.0.0.1', 43000));
    expect(caller.resolved).toBe('partial');
    expect(caller.uid).toBe(65534);
    expect(caller.user).toBe('nobody');
    expect(caller.pid).toBeUndefined();
    expect(caller.error).toMatch(/already closed/);
  });

  it('a timewait row (TIME_WAIT, or an orphaned FIN_WAIT2) does not claim uid 0', async () => {
    for (const state of [0x06, 0x05]) {
      tree.tables('', [['127.0.0.1:43001', '127.0.0.1:8080', state, 0, 0]], []);
      const caller = await resolver().resolve(conn('127.0.0.1', 43001));
      expect(caller.resolved, `state ${state}`).toBe('none');
      expect(caller.uid).toBeUndefined();
      expect(caller.error).toMatch(/already closed/);
    }
    // An orphaned FIN_WAIT2 socket that still shows its owner keeps the uid.
    tree.tables('', [['127.0.0.1:43001', '127.0.0.1:8080', 0x05, 65534, 0]], []);
    expect(await resolver().resolve(conn('127.0.0.1', 43001))).toMatchObject({
      resolved: 'partial',
      uid: 65534,
    });
  });

  it('no socket row: resolved none with a reason', async () => {
    const caller = await resolver().resolve(conn('127.0.0.1', 44444));
    expect(caller.resolved).toBe('none');
    expect(caller.error).toMatch(/no TCP socket for client 127\.0\.0\.1:44444/);
    const bad = await resolver().resolve(conn('not-an-address', 1));
    expect(bad.resolved).toBe('none');
  });

  it('a socket whose owner is gone: partial with uid and why', async () => {
    tree.tables('', [['127.0.0.1:43002', '127.0.0.1:8080', 0x01, 1000, 123456]], []);
    const caller = await resolver().resolve(conn('127.0.0.1', 43002));
    expect(caller).toMatchObject({ resolved: 'partial', uid: 1000, user: 'alice' });
    expect(caller.error).toMatch(/socket inode 123456 .*no process holds it/);
  });

  it('a process that vanishes between the fd scan and the description still yields a caller', async () => {
    tree.proc({ pid: 90, ppid: 1, uid: 1000, exe: '/usr/bin/curl', fds: { 3: 'socket:[9901]' } });
    tree.tables('', [['127.0.0.1:43003', '127.0.0.1:8080', 0x01, 1000, 9901]], []);
    const r = resolver();
    // First lookup indexes the socket; then the process disappears.
    expect((await r.resolve(conn('127.0.0.1', 43003))).pid).toBe(90);
    tree.remove(90);
    tree.tables('', [['127.0.0.1:43004', '127.0.0.1:8080', 0x01, 1000, 9902]], []);
    const caller = await r.resolve(conn('127.0.0.1', 43004));
    expect(caller.resolved).toBe('partial');
    expect(caller.uid).toBe(1000);
  });

  it('caches by socket inode, and re-describes when the socket changes', async () => {
    tree.proc({
      pid: 95,
      ppid: 1,
      uid: 0,
      exe: '/usr/bin/aws',
      fds: { 3: 'socket:[9500]', 4: 'socket:[9501]' },
    });
    tree.tables(
      '',
      [
        ['127.0.0.1:43010', '127.0.0.1:8080', 0x01, 0, 9500],
        ['127.0.0.1:43011', '127.0.0.1:8080', 0x01, 0, 9501],
      ],
      [],
    );
    const r = resolver();
    expect((await r.resolve(conn('127.0.0.1', 43010))).pid).toBe(95);
    expect((await r.resolve(conn('127.0.0.1', 43010))).pid).toBe(95);
    expect(r.stats().cacheHits).toBe(1);
    // The second socket of the same process was indexed by the first scan.
    expect((await r.resolve(conn('127.0.0.1', 43011))).pid).toBe(95);
    expect(r.stats().indexHits).toBe(1);
    // A recent caller with a brand-new socket is found without listing every process.
    // (prefetched while the table is read, so it shows as an index or a recent-caller hit).
    symlinkSync('socket:[9502]', join(tree.root, '95', 'fd', '5'));
    tree.tables('', [['127.0.0.1:43012', '127.0.0.1:8080', 0x01, 0, 9502]], []);
    const before = r.stats();
    expect((await r.resolve(conn('127.0.0.1', 43012))).pid).toBe(95);
    const after = r.stats();
    expect(after.probeHits + after.recentHits + after.indexHits).toBe(
      before.probeHits + before.recentHits + before.indexHits + 1,
    );
    expect(after.freshHits + after.scanHits).toBe(before.freshHits + before.scanHits);
  });

  it('a zero budget returns partial with the uid and says the budget ran out', async () => {
    for (let pid = 1000; pid < 1040; pid++) {
      tree.proc({ pid, ppid: 1, uid: 0, exe: '/usr/bin/sleep', fds: { 0: '/dev/null', 1: '/dev/null' } });
    }
    tree.proc({ pid: 999, ppid: 1, uid: 0, exe: '/usr/bin/curl', fds: { 3: 'socket:[12000]' } });
    tree.tables('', [['127.0.0.1:43020', '127.0.0.1:8080', 0x01, 0, 12000]], []);
    let t = 0;
    // A clock that jumps 1 ms per reading: any budget below that is spent at once.
    const r = resolver({ budgetMs: 0.5, now: () => t++ });
    const caller = await r.resolve(conn('127.0.0.1', 43020));
    expect(caller.resolved).toBe('partial');
    expect(caller.uid).toBe(0);
    expect(caller.error).toMatch(/budget/);
    expect(r.stats().budgetExceeded).toBe(1);
  });

  it('looks at the newest pid even when the budget is already spent, and only at that one', async () => {
    // A paused thread (a collection, a busy CPU) can use the budget up before the search starts;
    // the process the kernel started last is still worth its few reads.
    for (let pid = 1000; pid < 1040; pid++) {
      tree.proc({ pid, ppid: 1, uid: 0, exe: '/usr/bin/sleep', fds: { 0: '/dev/null', 1: '/dev/null' } });
    }
    tree.proc({ pid: 1040, ppid: 200, uid: 0, exe: '/usr/bin/curl', fds: { 3: 'socket:[12000]' } });
    tree.proc({ pid: 1039 + 100, ppid: 200, uid: 0, exe: '/usr/bin/wget', fds: { 3: 'socket:[12001]' } });
    mkdirSync(join(tree.root, 'sys', 'kernel'), { recursive: true });
    writeFileSync(join(tree.root, 'sys', 'kernel', 'pid_max'), '32768\n');
    tree.tables(
      '',
      [
        ['127.0.0.1:43020', '127.0.0.1:8080', 0x01, 0, 12000],
        ['127.0.0.1:43021', '127.0.0.1:8080', 0x01, 0, 12001],
      ],
      [],
    );
    let t = 0;
    const r = resolver({ budgetMs: 0.5, now: () => t++ });
    writeFileSync(join(tree.root, 'sys', 'kernel', 'ns_last_pid'), '1040\n');
    const newest = await r.resolve(conn('127.0.0.1', 43020));
    expect(newest).toMatchObject({ resolved: 'full', pid: 1040, exe: '/usr/bin/curl' });
    expect(r.stats().newPidHits).toBe(1);
    // wget is not the newest pid: past the budget, the search stops after the first number.
    const older = await r.resolve(conn('127.0.0.1', 43021));
    expect(older.resolved).toBe('partial');
    expect(older.error).toMatch(/budget/);
  });

  it('probes the most recent caller even when the budget is already spent, and only that one', async () => {
    // A paused thread can use the budget up before the search starts; a long-lived caller's next
    // socket is still worth the few reads of one probe.
    tree.proc({ pid: 95, ppid: 1, uid: 0, exe: '/usr/bin/aws', fds: { 3: 'socket:[9500]' } });
    tree.proc({ pid: 96, ppid: 1, uid: 0, exe: '/usr/bin/curl', fds: { 3: 'socket:[9600]' } });
    tree.tables(
      '',
      [
        ['127.0.0.1:43010', '127.0.0.1:8080', 0x01, 0, 9500],
        ['127.0.0.1:43012', '127.0.0.1:8080', 0x01, 0, 9600],
      ],
      [],
    );
    let t = 0;
    let step = 0;
    const r = resolver({ budgetMs: 0.5, now: () => (t += step) });
    // Found with time to spare: 96 first, then 95 (the most recent caller).
    expect((await r.resolve(conn('127.0.0.1', 43012))).pid).toBe(96);
    expect((await r.resolve(conn('127.0.0.1', 43010))).pid).toBe(95);
    // Now every reading of the clock is 1 ms on: the budget is spent before the search begins.
    step = 1;
    symlinkSync('socket:[9501]', join(tree.root, '95', 'fd', '4'));
    symlinkSync('socket:[9601]', join(tree.root, '96', 'fd', '4'));
    tree.tables(
      '',
      [
        ['127.0.0.1:43011', '127.0.0.1:8080', 0x01, 0, 9501],
        ['127.0.0.1:43013', '127.0.0.1:8080', 0x01, 0, 9601],
      ],
      [],
    );
    const before = r.stats().probeHits;
    expect(await r.resolve(conn('127.0.0.1', 43011))).toMatchObject({ resolved: 'full', pid: 95 });
    expect(r.stats().probeHits).toBe(before + 1);
    // 96 called before 95: past the budget, it is not probed.
    const older = await r.resolve(conn('127.0.0.1', 43013));
    expect(older.resolved).toBe('partial');
    expect(older.error).toMatch(/budget/);
  });

  it('with synchronous I/O, keeps ns_last_pid open, reads it afresh per lookup, and closes it', async () => {
    mkdirSync(join(tree.root, 'sys', 'kernel'), { recursive: true });
    const lastPid = join(tree.root, 'sys', 'kernel', 'ns_last_pid');
    const openOnIt = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === lastPid;
        } catch {
          return false;
        }
      }).length;
    tree.proc({ pid: 1040, ppid: 200, uid: 0, exe: '/usr/bin/curl', fds: { 3: 'socket:[12000]' } });
    tree.tables('', [['127.0.0.1:43020', '127.0.0.1:8080', 0x01, 0, 12000]], []);
    writeFileSync(lastPid, '1040\n');
    // The file itself: one open, a fresh read from the start each time.
    const file = syncProcIo.reread?.(lastPid, 32);
    expect(file?.read().toString()).toBe('1040\n');
    writeFileSync(lastPid, '977\n');
    expect(file?.read().toString()).toBe('977\n');
    file?.close();
    expect(openOnIt()).toBe(0);
    writeFileSync(lastPid, '1040\n');
    const r = resolver({ io: 'sync' });
    expect(await r.resolve(conn('127.0.0.1', 43020))).toMatchObject({ pid: 1040, exe: '/usr/bin/curl' });
    expect(openOnIt()).toBe(1);
    // A process started after the first lookup: the open file shows the kernel's new last pid.
    tree.proc({ pid: 1041, ppid: 200, uid: 0, exe: '/usr/bin/wget', fds: { 4: 'socket:[12001]' } });
    tree.tables(
      '',
      [
        ['127.0.0.1:43020', '127.0.0.1:8080', 0x01, 0, 12000],
        ['127.0.0.1:43021', '127.0.0.1:8080', 0x01, 0, 12001],
      ],
      [],
    );
    writeFileSync(lastPid, '1041\n');
    expect(await r.resolve(conn('127.0.0.1', 43021))).toMatchObject({ pid: 1041, exe: '/usr/bin/wget' });
    expect(openOnIt()).toBe(1);
    await r.close();
    expect(openOnIt()).toBe(0);
  });

  it('bounds cmdline and the parent chain', async () => {
    tree.proc({ pid: 2001, ppid: 1, uid: 0, exe: '/a' });
    tree.proc({ pid: 2002, ppid: 2001, uid: 0, exe: '/b' });
    tree.proc({ pid: 2003, ppid: 2002, uid: 0, exe: '/c' });
    tree.proc({
      pid: 2004,
      ppid: 2003,
      uid: 0,
      exe: '/d',
      cmdline: ['d', ...Array.from({ length: 50 }, (_, i) => `arg${i}`)],
      fds: { 3: 'socket:[13000]' },
    });
    tree.tables('', [['127.0.0.1:43030', '127.0.0.1:8080', 0x01, 0, 13000]], []);
    const caller = await resolver({ maxParents: 2, maxCmdlineArgs: 3 }).resolve(conn('127.0.0.1', 43030));
    expect(caller.parents).toEqual([
      { pid: 2003, exe: '/c' },
      { pid: 2002, exe: '/b' },
    ]);
    expect(caller.cmdline).toEqual(['d', 'arg0', 'arg1', '…(+48 args)']);
  });

  it('an unreadable exe gives partial with the pid and an error', async () => {
    tree.proc({ pid: 3000, ppid: 1, uid: 0, fds: { 3: 'socket:[14000]' } });
    tree.tables('', [['127.0.0.1:43040', '127.0.0.1:8080', 0x01, 0, 14000]], []);
    const caller = await resolver().resolve(conn('127.0.0.1', 43040));
    expect(caller).toMatchObject({ resolved: 'partial', pid: 3000, uid: 0 });
    expect(caller.error).toMatch(/reading .*\/3000\/exe/);
  });

  it('a missing procRoot never throws', async () => {
    const r = createProcResolver({ procRoot: join(dir, 'nope'), refreshIntervalMs: 0 });
    resolvers.push(r);
    const caller = await r.resolve(conn('127.0.0.1', 1234));
    expect(caller.resolved).toBe('none');
    expect(caller.error).toBeTruthy();
  });

  it('refresh() tracks new processes and forgets exited ones', async () => {
    const r = resolver();
    await r.refresh();
    expect(r.stats().trackedPids).toBe(3);
    tree.proc({ pid: 4000, ppid: 1, uid: 0, exe: '/x' });
    await r.refresh();
    expect(r.stats().trackedPids).toBe(4);
    tree.remove(4000);
    tree.remove(300);
    await r.refresh();
    expect(r.stats().trackedPids).toBe(2);
  });
});
