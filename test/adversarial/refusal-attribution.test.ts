import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProcResolver } from '../../src/guard/attribution/index.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { GuardUnderTest } from '../support/guard-under-test.js';

/**
 * The requests the guard refuses are the ones whose caller matters most (an SSRF through a proxy, a rebinding Host),
 * so a refusal must not close the connection before attribution has read the caller. A live process
 * sends a token-bearing request with X-Forwarded-For; the event must name it.
 */

let g: GuardUnderTest;
const children: ChildProcess[] = [];

beforeAll(async () => {
  g = await GuardUnderTest.start({
    guard: { attribution: { timeoutMs: 2000 } },
    resolver: createProcResolver({ budgetMs: 1500 }),
  });
}, 30_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await g?.close();
});

/** Runs a node client that sends `headers` on one GET and stays alive until stdin closes; returns its pid and event. */
async function callFrom(
  headers: Record<string, string>,
): Promise<{ pid: number; event: GuardEvent | undefined }> {
  const before = g.log.events.length;
  const code = [
    "const http = require('http');",
    `const q = http.request(${JSON.stringify(`${g.guard.url}/latest/meta-data/iam/security-credentials/`)}, { headers: ${JSON.stringify(headers)} }, (res) => res.resume());`,
    "q.on('error', () => {});",
    'q.end();',
    'process.stdin.resume();',
    "process.stdin.on('end', () => process.exit(0));",
  ].join('\n');
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'ignore', 'ignore'] });
  children.push(child);
  const exited = new Promise((r) => child.on('exit', r));
  const deadline = Date.now() + 15_000;
  while (g.log.events.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await g.idle(15_000);
  child.stdin?.end();
  await exited;
  return { pid: child.pid ?? -1, event: g.log.events[before] };
}

describe('a refused request names its caller', () => {
  it.each([
    [
      'a token GET with X-Forwarded-For',
      { 'X-aws-ec2-metadata-token': 'AQAEAtoken==', 'X-Forwarded-For': '9.9.9.9' },
    ],
    [
      'a token GET with a rebinding Host',
      { 'X-aws-ec2-metadata-token': 'AQAEAtoken==', Host: 'attacker.example' },
    ],
    ['a token GET with Forwarded', { 'X-aws-ec2-metadata-token': 'AQAEAtoken==', Forwarded: 'for=9.9.9.9' }],
  ])(
    '%s',
    async (_n, headers) => {
      const { pid, event } = await callFrom(headers);
      expect(event?.action, JSON.stringify(event)).toBe('refused');
      expect(event?.caller?.pid, JSON.stringify(event?.caller)).toBe(pid);
    },
    30_000,
  );

  it('an allowed token GET from the same kind of process is named too (the control case)', async () => {
    const { pid, event } = await callFrom({ 'X-aws-ec2-metadata-token': 'AQAEAtoken==' });
    expect(event?.caller?.pid, JSON.stringify(event?.caller)).toBe(pid);
  }, 30_000);
});
