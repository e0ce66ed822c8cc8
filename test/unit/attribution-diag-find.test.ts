import { describe, expect, it } from 'vitest';
import { bytesFor, DiagFinder, defaultOriginalDestinations } from '../../src/guard/attribution/diag-find.js';
import { TCP_STATES } from '../../src/guard/attribution/proc-parse.js';
import type { DiagAnswer, SockDiag } from '../../src/guard/attribution/sock-diag.js';
import type { ConnectionInfo } from '../../src/guard/attribution/types.js';

/** A kernel stand-in: records every query and answers from a table keyed by the query. */
function fakeKernel(answers: Record<string, DiagAnswer> = {}) {
  const queries: string[] = [];
  const key = (family: number, src: Uint8Array, sport: number, dst: Uint8Array, dport: number) =>
    `${family} ${Array.from(src).join('.')}:${sport} -> ${Array.from(dst).join('.')}:${dport}`;
  const diag: SockDiag = {
    lookup(family, src, sport, dst, dport) {
      const k = key(family, src, sport, dst, dport);
      queries.push(k);
      return answers[k] ?? null;
    },
  };
  return { diag, queries, key };
}

const conn = (remoteAddress: string, localAddress: string, localPort = 16925): ConnectionInfo => ({
  family: remoteAddress.includes(':') && !remoteAddress.startsWith('::ffff:') ? 6 : 4,
  remoteAddress,
  remotePort: 40000,
  localAddress,
  localPort,
});

const mapped = (v4: string) => [...Array(10).fill(0), 255, 255, ...v4.split('.').map(Number)].join('.');
const v6 = (s: string) => Array.from(bytesFor(6, s) as Uint8Array).join('.');

describe('DiagFinder: which tuples it asks the kernel for', () => {
  it('a direct IPv4 client: the guard address first, then every metadata address', () => {
    const k = fakeKernel();
    const f = new DiagFinder(k.diag, ['169.254.169.254:80', '[fd00:ec2::254]:80']);
    expect(f.find(conn('127.0.0.1', '127.0.0.1'))).toBeUndefined();
    expect(k.queries).toEqual([
      '4 127.0.0.1:40000 -> 127.0.0.1:16925',
      '4 127.0.0.1:40000 -> 169.254.169.254:80',
      // then as a dual-stack AF_INET6 socket, mapped
      `6 ${mapped('127.0.0.1')}:40000 -> ${mapped('127.0.0.1')}:16925`,
      `6 ${mapped('127.0.0.1')}:40000 -> ${mapped('169.254.169.254')}:80`,
      `6 ${mapped('127.0.0.1')}:40000 -> ${v6('fd00:ec2::254')}:80`,
    ]);
    expect(f.stats).toEqual({ lookups: 5, hits: 0, errors: 0 });
  });

  it('a redirected client is found through the metadata address, which is then tried first', () => {
    const k = fakeKernel();
    k.diag.lookup = (family, src, sport, dst, dport) => {
      k.queries.push(k.key(family, src, sport, dst, dport));
      return dport === 80 ? [TCP_STATES.ESTABLISHED, 65534, 777] : null;
    };
    const f = new DiagFinder(k.diag, ['169.254.169.254:80']);
    expect(f.find(conn('10.0.0.5', '127.0.0.1'))).toEqual({
      state: TCP_STATES.ESTABLISHED,
      uid: 65534,
      inode: 777,
    });
    expect(k.queries).toEqual([
      '4 10.0.0.5:40000 -> 127.0.0.1:16925',
      '4 10.0.0.5:40000 -> 169.254.169.254:80',
    ]);
    k.queries.length = 0;
    f.find(conn('10.0.0.5', '127.0.0.1'));
    expect(k.queries).toEqual(['4 10.0.0.5:40000 -> 169.254.169.254:80']);
  });

  it('an IPv6 client is asked for as AF_INET6 only; a client seen as ::ffff:a.b.c.d as IPv4 first', () => {
    const k = fakeKernel();
    const f = new DiagFinder(k.diag, []);
    f.find(conn('::1', '::1'));
    expect(k.queries).toEqual([`6 ${v6('::1')}:40000 -> ${v6('::1')}:16925`]);
    k.queries.length = 0;
    f.find(conn('::ffff:127.0.0.1', '::ffff:127.0.0.1'));
    expect(k.queries[0]).toBe('4 127.0.0.1:40000 -> 127.0.0.1:16925');
  });

  it('never takes a listening socket for a client', () => {
    const k = fakeKernel({ '4 127.0.0.1:40000 -> 127.0.0.1:16925': [TCP_STATES.LISTEN, 0, 5] });
    const f = new DiagFinder(k.diag, []);
    expect(f.find(conn('127.0.0.1', '127.0.0.1'))).toBeUndefined();
  });

  it('prefers a live socket to a closed one of the same tuple (an older connection, reused port)', () => {
    const v4 = '4 127.0.0.1:40000 -> 127.0.0.1:16925';
    const dual = `6 ${mapped('127.0.0.1')}:40000 -> ${mapped('127.0.0.1')}:16925`;
    // The AF_INET tuple is an old connection in TIME_WAIT; the client is a dual-stack AF_INET6 socket.
    const k = fakeKernel({ [v4]: [TCP_STATES.TIME_WAIT, 0, 0], [dual]: [TCP_STATES.ESTABLISHED, 1000, 77] });
    const f = new DiagFinder(k.diag, []);
    expect(f.find(conn('127.0.0.1', '127.0.0.1'))).toEqual({
      state: TCP_STATES.ESTABLISHED,
      uid: 1000,
      inode: 77,
    });
    expect(k.queries).toEqual([v4, dual]);
    // Only the closed one exists: it is the answer (the client has gone; its row says so).
    const gone = new DiagFinder(fakeKernel({ [v4]: [TCP_STATES.TIME_WAIT, 0, 0] }).diag, []);
    expect(gone.find(conn('127.0.0.1', '127.0.0.1'))).toEqual({
      state: TCP_STATES.TIME_WAIT,
      uid: 0,
      inode: 0,
    });
    expect(gone.stats.hits).toBe(1);
  });

  it('a permanent error turns it off and says why; a transient one costs only that lookup', () => {
    let code = 'EAGAIN';
    let calls = 0;
    const diag: SockDiag = {
      lookup() {
        calls++;
        throw Object.assign(new Error(`sock_diag: ${code}`), { code });
      },
    };
    const f = new DiagFinder(diag, []);
    expect(f.find(conn('127.0.0.1', '127.0.0.1'))).toBeUndefined();
    expect(f.usable).toBe(true);
    code = 'EPERM';
    expect(f.find(conn('127.0.0.1', '127.0.0.1'))).toBeUndefined();
    expect(f.usable).toBe(false);
    expect(f.unavailable).toBe('sock_diag failed: sock_diag: EPERM');
    expect(f.find(conn('127.0.0.1', '127.0.0.1'))).toBeUndefined();
    expect(calls).toBe(2);
    expect(f.stats.errors).toBe(2);
  });

  it('ignores destinations that do not parse, and defaults to the metadata addresses of every flavor', () => {
    const k = fakeKernel();
    const f = new DiagFinder(k.diag, ['nonsense', '1.2.3.4:99999', '169.254.169.254:80']);
    f.find(conn('10.0.0.5', '127.0.0.1'));
    expect(k.queries).toHaveLength(1 + 1 + 2);
    expect(defaultOriginalDestinations()).toEqual(
      expect.arrayContaining(['169.254.169.254:80', '[fd00:ec2::254]:80', '100.100.100.200:80']),
    );
  });
});
