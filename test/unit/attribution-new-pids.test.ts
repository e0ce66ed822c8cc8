import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProcResolver } from '../../src/guard/attribution/index.js';
import { NEW_PID_GAP, NEW_PID_PROBES } from '../../src/guard/attribution/pid-search.js';
import { conn, FakeProcTree } from '../support/fake-proc.js';

/**
 * The newest-pid walk over a fake /proc: a caller started just now is found by walking down from the
 * last pid the kernel handed out (stats.newPidHits; the inline tier stops after this walk). On a busy
 * host most numbers above the caller's belong to processes that have already exited (no /proc
 * entry): the walk passes them, bounded by NEW_PID_PROBES. A number whose process cannot be read
 * counts toward the run of NEW_PID_GAP that ends the walk. Past the walk, the whole scans find the
 * caller (another stage's hit).
 */

const CALLER = 5000;
const INODE = 12_000;

let dir: string;
let tree: FakeProcTree;
const resolvers: Array<{ close(): Promise<void> }> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imdsg-newpids-'));
  tree = new FakeProcTree(dir);
  tree.proc({ pid: 1, ppid: 0, uid: 0, exe: '/usr/lib/systemd/systemd', fds: { 0: '/dev/null' } });
  tree.proc({ pid: CALLER, ppid: 1, uid: 0, exe: '/usr/bin/curl', fds: { 3: `socket:[${INODE}]` } });
  tree.tables('', [['127.0.0.1:43020', '127.0.0.1:8080', 0x01, 0, INODE]], []);
  mkdirSync(join(tree.root, 'sys', 'kernel'), { recursive: true });
  writeFileSync(join(tree.root, 'sys', 'kernel', 'pid_max'), '32768\n');
});

afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A first lookup of the caller's connection, with the kernel's last pid at `lastPid`. */
async function lookupWithLastPid(lastPid: number) {
  writeFileSync(join(tree.root, 'sys', 'kernel', 'ns_last_pid'), `${lastPid}\n`);
  const r = createProcResolver({
    procRoot: tree.root,
    passwdPath: tree.passwd,
    refreshIntervalMs: 0,
    endianness: 'LE',
    // The socket from the fake tree's net/tcp, not the host's sock_diag.
    sockDiag: false,
    // Facts, not timing: the machine may be busy.
    budgetMs: 10_000,
  });
  resolvers.push(r);
  const caller = await r.resolve(conn('127.0.0.1', 43020));
  return { caller, stats: r.stats() };
}

describe('the newest-pid walk passes numbers no process holds', () => {
  it('finds the caller behind more unused numbers than NEW_PID_GAP', async () => {
    const { caller, stats } = await lookupWithLastPid(CALLER + NEW_PID_GAP * 3);
    expect(caller).toMatchObject({ resolved: 'full', pid: CALLER, exe: '/usr/bin/curl' });
    expect(stats.newPidHits).toBe(1);
  });

  it('finds the caller at the last number NEW_PID_PROBES reaches', async () => {
    const { caller, stats } = await lookupWithLastPid(CALLER + NEW_PID_PROBES - 1);
    expect(caller).toMatchObject({ resolved: 'full', pid: CALLER });
    expect(stats.newPidHits).toBe(1);
  });

  it('stops after NEW_PID_PROBES numbers: a caller one further down is left to the whole scans', async () => {
    const { caller, stats } = await lookupWithLastPid(CALLER + NEW_PID_PROBES);
    expect(caller).toMatchObject({ resolved: 'full', pid: CALLER });
    expect(stats.newPidHits).toBe(0);
    expect(stats.freshHits + stats.scanHits).toBe(1);
  });

  it('a run of NEW_PID_GAP numbers whose process cannot be read ends the walk', async () => {
    // A status that cannot be read (here a directory: EISDIR) is a process, of unknown age.
    for (let pid = CALLER + 1; pid <= CALLER + NEW_PID_GAP; pid++) {
      mkdirSync(join(tree.root, String(pid), 'status'), { recursive: true });
    }
    const blocked = await lookupWithLastPid(CALLER + NEW_PID_GAP);
    expect(blocked.stats.newPidHits).toBe(0);
    // One fewer and the walk reaches the caller.
    rmSync(join(tree.root, String(CALLER + NEW_PID_GAP)), { recursive: true });
    const found = await lookupWithLastPid(CALLER + NEW_PID_GAP);
    expect(found.caller).toMatchObject({ resolved: 'full', pid: CALLER });
    expect(found.stats.newPidHits).toBe(1);
  });
});
