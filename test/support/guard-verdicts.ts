import { expect } from 'vitest';
import type { GuardConfig } from '../../src/config/schema.js';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { describeExchange, type Exchange } from './guard-under-test.js';
import { type Header, headerValues, type ParsedRequest } from './raw-http.js';
import { rejudge } from './rejudge.js';

/**
 * Verdicts on an exchange with the guard, from the outside: what the client got, what reached the
 * upstream, and what the guard recorded. Every check names the exchange in its failure message.
 */

/** Request headers a proxy does not forward (RFC 9110 7.6.1), as docs/guard.md lists them. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export interface RefusalExpectation {
  /** The status the client must get (one of them when an array). */
  status: number | readonly number[];
  /** The rule the event must name (one of them when an array). */
  rule?: string | readonly string[];
}

/**
 * The request was refused: the client got exactly one answer with the expected status, not one byte
 * reached the upstream, and the guard recorded one deny event for it.
 */
export function expectRefused(x: Exchange, want: RefusalExpectation): GuardEvent {
  const why = describeExchange(x);
  const statuses = Array.isArray(want.status) ? want.status : [want.status];
  expect(x.upstreamBytes, `nothing may reach the upstream\n${why}`).toBe(0);
  const finals = x.responses.filter((r) => r.status >= 200);
  expect(finals.length, `exactly one answer\n${why}`).toBe(1);
  expect(statuses, `status\n${why}`).toContain(finals[0]?.status);
  expect(x.events.length, `one event\n${why}`).toBe(1);
  const e = x.events[0] as GuardEvent;
  expect(e.decision, `event decision\n${why}`).toBe('deny');
  expect(e.action, `event action\n${why}`).toBe('refused');
  expect(e.alert, `a refusal alerts\n${why}`).toBe(true);
  expect(e.status, `the event's status is the client's\n${why}`).toBe(finals[0]?.status);
  if (want.rule !== undefined) {
    const rules = Array.isArray(want.rule) ? want.rule : [want.rule];
    expect(rules, `rule\n${why}`).toContain(e.rule);
  }
  return e;
}

/** Names, lower-cased, that the guard may drop or set itself on the way up. */
function comparable(headers: readonly Header[], secretHeader: string): Header[] {
  return headers.filter(([k]) => {
    const n = k.toLowerCase();
    return !HOP_BY_HOP.has(n) && n !== 'host' && n !== secretHeader.toLowerCase();
  });
}

export interface ForwardExpectation {
  /** The client's header list, exactly as sent. */
  clientHeaders: readonly Header[];
  /** Lower-case name of the guard's secret header (stripped). Default x-meta-auth. */
  secretHeader?: string;
  method?: string;
  /** The path the upstream must see (the normalized one). */
  target?: string;
  /** The Host the upstream must see. */
  host?: string;
  /** Expected event decision/action (default allow/forwarded). */
  decision?: 'allow' | 'deny';
  action?: 'forwarded' | 'flagged';
}

/**
 * The request was forwarded, once, as the client sent it: the upstream got exactly one request on
 * one connection, with the client's header list (order, casing, duplicates) minus only the secret
 * header and the hop-by-hop headers, one Host, at most `Connection: close` added; the client got the
 * upstream's status; the guard recorded one event saying so.
 */
export function expectForwarded(x: Exchange, want: ForwardExpectation): ParsedRequest {
  const why = describeExchange(x);
  expect(x.upstream.length, `exactly one request upstream\n${why}`).toBe(1);
  const up = x.upstream[0] as ParsedRequest;
  expect(up.complete, `a complete request upstream\n${why}`).toBe(true);
  if (want.method) expect(up.method, why).toBe(want.method);
  if (want.target) expect(up.target, why).toBe(want.target);
  const secret = want.secretHeader ?? 'x-meta-auth';
  let upHeaders = comparable(up.headers, secret);
  const clientFraming = want.clientHeaders.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k));
  if (!clientFraming) {
    // Tolerated: node's client adds
    // `Content-Length: 0` to a bodiless PUT; the dedicated case in header-fidelity.test.ts holds the line.
    upHeaders = upHeaders.filter(([k, v]) => !(k.toLowerCase() === 'content-length' && v === '0'));
  }
  expect(upHeaders, `header list forwarded as sent\n${why}`).toEqual(comparable(want.clientHeaders, secret));
  const hosts = headerValues(up.headers, 'host');
  expect(hosts.length, `one Host upstream\n${why}`).toBe(1);
  if (want.host) expect(hosts[0], why).toBe(want.host);
  const conn = headerValues(up.headers, 'connection');
  expect(conn.every((v) => v.toLowerCase() === 'close') && conn.length <= 1, why).toBe(true);
  for (const [k] of up.headers) {
    const n = k.toLowerCase();
    if (n === 'connection' || n === 'host' || n === 'content-length' || n === 'transfer-encoding') continue;
    expect(HOP_BY_HOP.has(n) || n === secret, `${k} must not reach the upstream\n${why}`).toBe(false);
  }
  const finals = x.responses.filter((r) => r.status >= 200);
  expect(finals.length, `one answer\n${why}`).toBe(1);
  expect(x.events.length, `one event\n${why}`).toBe(1);
  const e = x.events[0] as GuardEvent;
  expect(e.decision, why).toBe(want.decision ?? 'allow');
  expect(e.action, why).toBe(want.action ?? 'forwarded');
  expect(e.status, `the event's status is the client's\n${why}`).toBe(finals[0]?.status);
  return up;
}

/**
 * The black-box invariant: either the request was refused (nothing upstream, one deny event), or
 * everything that reached the upstream is, judged again by the guard's own policy on the bytes the
 * upstream received, allowed; each upstream request is a complete one, and the guard recorded one
 * forwarded event per upstream request.
 */
export function expectRefusedOrJudgedAsSent(
  x: Exchange,
  config: GuardConfig,
  upstreamPort: number,
  refusal: RefusalExpectation = { status: [400, 401, 403, 405, 431] },
): void {
  const why = describeExchange(x);
  if (x.upstreamBytes === 0) {
    expectRefused(x, refusal);
    return;
  }
  for (const up of x.upstream) {
    expect(up.complete, `a complete request upstream\n${why}`).toBe(true);
    const d = rejudge(config, up, { address: '127.0.0.1', port: upstreamPort });
    expect(`${d.decision} ${d.rule}: ${d.reason}`, `what reached the upstream, judged again\n${why}`).toMatch(
      /^allow /,
    );
  }
  const passed = x.events.filter((e) => e.action === 'forwarded' || e.action === 'flagged');
  expect(passed.length, `one forwarded event per upstream request\n${why}`).toBe(x.upstream.length);
}
