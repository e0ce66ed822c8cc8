import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeExchange, GuardUnderTest } from '../support/guard-under-test.js';
import { METADATA_HOST, request } from '../support/imds-requests.js';
import type { Header } from '../support/raw-http.js';

/**
 * IMDSv1 reads allowed on a header alone (DESIGN.md default policy 3: "A header is
 * spoofable, so a credentials or user-data read allowed on a header alone raises an alert by
 * default"). Every spelling of the sensitive paths counts, and what is not sensitive stays quiet.
 */

let g: GuardUnderTest;
let role = '';
beforeAll(async () => {
  g = await GuardUnderTest.start({ upstream: { emulator: { settings: { tokens: 'optional' } } } });
  const x = await g.exchange(
    request('GET', '/latest/meta-data/iam/security-credentials/', [
      ['Host', METADATA_HOST],
      ['User-Agent', 'aws-cli/2.15.0'],
    ]),
  );
  role = x.responses[0]?.body.toString('latin1').trim() ?? '';
  expect(role.length, describeExchange(x)).toBeGreaterThan(0);
}, 30_000);
afterAll(() => g?.close());

const HEADERS: Array<[string, Header]> = [
  ['User-Agent aws-cli/', ['User-Agent', 'aws-cli/2.15.0 Python/3.11']],
  ['User-Agent Botocore/', ['User-Agent', 'Botocore/1.31.0']],
  ['User-Agent aws-sdk-js/', ['User-Agent', 'aws-sdk-js/3.600.0']],
  ['Metadata-Flavor: Amazon', ['Metadata-Flavor', 'Amazon']],
];

describe('a header-allowed IMDSv1 read of an ordinary path is forwarded and quiet (the control)', () => {
  it.each(HEADERS)('%s on instance-id: allowed, quiet', async (_n, h) => {
    const x = await g.exchange(request('GET', '/latest/meta-data/instance-id', [['Host', METADATA_HOST], h]));
    expect(x.events[0]?.decision, describeExchange(x)).toBe('allow');
    expect(x.events[0]?.alert).toBe(false);
  });
});

describe('a credentials or user-data read allowed on a header alone raises an alert', () => {
  const paths = () => [
    '/latest/meta-data/iam/security-credentials/',
    `/latest/meta-data/iam/security-credentials/${role}`,
    `/latest//meta-data/iam/security-credentials/${role}`,
    `/latest/meta-data/iam/info/../security-credentials/${role}`,
    '/latest/user-data',
    '/latest/user-data/',
  ];
  const cases = HEADERS.flatMap(([n, h]) =>
    [0, 1, 2, 3, 4, 5].map((i) => [`${n}, path #${i}`, h, i] as const),
  );
  it.each(cases)('%s', async (_n, h, i) => {
    const path = paths()[i] as string;
    const x = await g.exchange(request('GET', path, [['Host', METADATA_HOST], h]));
    const why = `${path}\n${describeExchange(x)}`;
    expect(x.events[0]?.decision, why).toBe('allow');
    expect(x.events[0]?.alert, why).toBe(true);
  });
});
