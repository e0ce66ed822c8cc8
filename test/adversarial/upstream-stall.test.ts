import { afterEach, describe, expect, it } from 'vitest';
import { describeExchange, GuardUnderTest } from '../support/guard-under-test.js';
import { tokenPut, v2Get } from '../support/imds-requests.js';
import { headerValue } from '../support/raw-http.js';
import type { Responder } from '../support/recording-upstream.js';

/**
 * Upstreams that stall or misbehave: the guard bounds the whole upstream
 * exchange, head and body, and answers the client with an IMDS-like 504 (or 502) instead of a reset
 * or an endless trickle. The deadline is set small here; nothing waits on a clock to order events.
 */

const DEADLINE_MS = 300;
const guards: GuardUnderTest[] = [];
afterEach(async () => {
  await Promise.all(guards.splice(0).map((g) => g.close()));
});

const responders: Array<[string, Responder, number]> = [
  ['accepts and never answers', () => {}, 504],
  ['sends 100 Continue, then nothing', (s) => void s.write('HTTP/1.1 100 Continue\r\n\r\n'), 504],
  ['answers garbage', (s) => void s.end('HELLO WORLD\r\n\r\n'), 502],
  ['resets the connection', (s) => void s.resetAndDestroy(), 502],
  [
    'answers with a 70 KB header',
    (s) => void s.end(`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(70_000)}\r\nContent-Length: 0\r\n\r\n`),
    502,
  ],
];

/** A guard in front of `respond` answers a v2 GET with `status`, IMDS-shaped, and an error event. */
async function expectIMDSLikeError(respond: Responder, status: number): Promise<void> {
  const g = await GuardUnderTest.start({
    guard: { limits: { upstreamTimeoutMs: DEADLINE_MS } },
    upstream: { respond },
  });
  guards.push(g);
  const x = await g.exchange(v2Get('/latest/meta-data/instance-id', 'AQAEAtoken=='), { timeoutMs: 8_000 });
  const why = describeExchange(x);
  const finals = x.responses.filter((r) => r.status >= 200);
  expect(
    finals.map((r) => r.status),
    why,
  ).toEqual([status]);
  expect(finals[0]?.complete, why).toBe(true);
  expect(headerValue(finals[0]?.headers ?? [], 'server'), why).toBe('EC2ws');
  expect(x.events.length, why).toBe(1);
  expect(x.events[0]?.action, why).toBe('error');
  expect(x.events[0]?.status, why).toBe(status);
  expect(x.events[0]?.upstream?.error, why).toBeDefined();
}

describe('a stalled or broken upstream gives the client an IMDS-like error within the deadline', () => {
  it.each(responders)(
    'upstream %s',
    async (_name, respond, status) => {
      await expectIMDSLikeError(respond, status);
    },
    20_000,
  );

  it('a token PUT to an upstream that never answers gets 504, and a later request is served normally', async () => {
    let stall = true;
    const g = await GuardUnderTest.start({
      guard: { limits: { upstreamTimeoutMs: DEADLINE_MS } },
      upstream: {
        respond: (s) => {
          if (!stall)
            s.end(
              'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\nTOKN',
            );
        },
      },
    });
    guards.push(g);
    const x = await g.exchange(tokenPut(), { timeoutMs: 8_000 });
    expect(
      x.responses.map((r) => r.status),
      describeExchange(x),
    ).toEqual([504]);
    stall = false;
    const y = await g.exchange(tokenPut(), { timeoutMs: 8_000 });
    expect(
      y.responses.map((r) => r.status),
      describeExchange(y),
    ).toEqual([200]);
    expect(y.responses[0]?.body.toString()).toBe('TOKN');
  }, 20_000);
});

// ---- findings the adversarial review reported, each fixed ----

import type { Socket } from 'node:net';

/** Writes `parts` one after another, `everyMs` apart, until the socket closes (a bounded number). */
function drip(socket: Socket, parts: string[], everyMs: number): void {
  let i = 0;
  const t = setInterval(() => {
    if (socket.destroyed || i >= parts.length) {
      clearInterval(t);
      return;
    }
    socket.write(parts[i++] as string);
  }, everyMs);
  socket.on('close', () => clearInterval(t));
}

const HEAD_100 =
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nConnection: close\r\n\r\n';

describe('an upstream that stalls or truncates after its head gives 504 or 502, not a reset or a trickle', () => {
  const open: Array<[string, Responder, number]> = [
    ['sends the head, then nothing', (s) => void s.write(HEAD_100), 504],
    ['sends the head and part of the body, then nothing', (s) => void s.write(`${HEAD_100}i-0123`), 504],
    [
      'trickles the body one byte at a time, forever',
      (s) => {
        s.write(HEAD_100);
        drip(
          s,
          Array.from({ length: 150 }, () => 'x'),
          100,
        );
      },
      504,
    ],
    ['trickles the status line one byte at a time', (s) => drip(s, HEAD_100.split(''), 100), 504],
    [
      'sends a chunked head and one chunk, then nothing',
      (s) => {
        s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n');
      },
      504,
    ],
    ['closes in the middle of the body', (s) => void s.end(`${HEAD_100}i-0123`), 502],
  ];
  it.each(open)(
    'upstream %s',
    async (_name, respond, status) => {
      await expectIMDSLikeError(respond, status);
    },
    20_000,
  );
});
