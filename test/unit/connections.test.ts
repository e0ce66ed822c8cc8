import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Connections } from '../../src/guard/proxy/connections.js';

/** Requests pipelined on one connection: what ran, what was dropped, and the drops that threw. */
function pipeline(count: number, throwing: ReadonlySet<number>) {
  const errors: unknown[] = [];
  const connections = new Connections((err) => errors.push(err));
  const socket = new Socket();
  const ran: number[] = [];
  const dropped: number[] = [];
  for (let i = 0; i < count; i++) {
    connections.enter(
      socket,
      () => ran.push(i),
      () => {
        dropped.push(i);
        if (throwing.has(i)) throw new Error(`drop ${i} failed`);
      },
    );
  }
  return { connections, socket, ran, dropped, errors };
}

describe('Connections: requests pipelined behind an answer that closes the connection', () => {
  it('serves the first, then drops every waiting request when the answer closes the connection', () => {
    const p = pipeline(3, new Set());
    expect(p.ran).toEqual([0]);
    p.connections.closing(p.socket);
    expect(p.dropped).toEqual([1, 2]);
    expect(p.errors).toEqual([]);
  });

  it('a drop that throws does not stop the others, and its error is reported', () => {
    const p = pipeline(5, new Set([1, 3]));
    expect(() => p.connections.closing(p.socket)).not.toThrow();
    expect(p.ran).toEqual([0]);
    expect(p.dropped).toEqual([1, 2, 3, 4]);
    expect(p.errors.map((e) => (e as Error).message)).toEqual(['drop 1 failed', 'drop 3 failed']);
  });

  it('the same when the request in progress ends without keep-alive, or the socket closes', () => {
    const ended = pipeline(3, new Set([1]));
    ended.connections.leave(ended.socket, false);
    expect(ended.dropped).toEqual([1, 2]);
    expect(ended.errors).toHaveLength(1);

    const closed = pipeline(3, new Set([1]));
    closed.socket.emit('close', false);
    expect(closed.dropped).toEqual([1, 2]);
    expect(closed.errors).toHaveLength(1);
  });

  it('a later parse error still gets its answer after a drop threw', () => {
    const p = pipeline(3, new Set([1]));
    const answered: string[] = [];
    expect(p.connections.afterCurrent(p.socket, () => answered.push('400'))).toBe(true);
    expect(p.dropped).toEqual([1, 2]);
    expect(answered).toEqual([]);
    p.connections.leave(p.socket, true);
    expect(answered).toEqual(['400']);
  });
});
