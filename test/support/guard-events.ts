import type { GuardEvent } from '../../src/guard/events/types.js';

let counter = 0;

/** A realistic GuardEvent for tests; override any field. Ids are unique and time-ordered. */
export type EventOverrides = Omit<Partial<GuardEvent>, 'request'> & {
  request?: Partial<GuardEvent['request']>;
};

export function makeEvent(overrides: EventOverrides = {}): GuardEvent {
  counter += 1;
  const { request, ...rest } = overrides;
  const time = rest.time ?? new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + counter).toISOString();
  return {
    v: 1,
    id: `evt-${String(counter).padStart(8, '0')}`,
    time,
    host: 'test-host',
    mode: 'enforce',
    decision: 'deny',
    action: 'refused',
    rule: 'default-deny-v1',
    reason: 'tokenless request from a caller that is not allowed',
    status: 403,
    alert: true,
    request: {
      method: 'GET',
      path: '/latest/meta-data/iam/security-credentials/',
      version: 'v1',
      flavor: 'aws',
      userAgent: 'curl/8.5.0',
      client: { address: '127.0.0.1', port: 40000 + (counter % 20000) },
      ...request,
    },
    caller: {
      resolved: 'full',
      pid: 4242,
      exe: '/usr/bin/curl',
      user: 'www-data',
      uid: 33,
      cmdline: ['curl', '-H', 'Authorization: SECRET-ARGV-VALUE', 'http://169.254.169.254/'],
    },
    upstream: { status: 200, latencyMs: 3 },
    durationMs: 4,
    attributionMs: 0.2,
    ...rest,
  };
}

/** A small forwarded event with the id `id-<i>`, for tests that count and order what was written. */
export function numberedEvent(i: number): GuardEvent {
  return {
    v: 1,
    id: `id-${i}`,
    time: new Date(0).toISOString(),
    host: 'h',
    mode: 'enforce',
    decision: 'allow',
    action: 'forwarded',
    rule: 'imdsv2',
    reason: 'r',
    request: {
      method: 'GET',
      path: '/',
      version: 'v2',
      flavor: 'aws',
      client: { address: '127.0.0.1', port: 1 },
    },
    status: 200,
    alert: false,
  };
}

export { waitFor } from './wait.js';
