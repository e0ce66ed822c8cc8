/**
 * The demo's scenarios: real clients and attacks replayed against a guard in front of the emulator.
 * Each has the verdict a correct guard gives. Pure data plus small request builders.
 */

export interface Expectation {
  decision: 'allow' | 'deny';
  /** The deciding rule (for multi-request clients: every request's rule is one of these). */
  rules: readonly string[];
  status: number;
  /** What the token ledger says of the token (token.status of the events), when it matters. */
  token?: 'issued-here' | 'unknown' | 'expired' | 'other-caller';
}

export type ScenarioKind = 'sdk-v3' | 'botocore' | 'curl' | 'http';

export interface HttpStep {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Ask the guard for a token first and send it in the token header. */
  withToken?: boolean;
  /** Send this token (one the guard never issued) in the token header. */
  token?: string;
  /** Padding header lines (`TE: x`) sent before the headers (the header-padding attack). */
  padding?: number;
}

export interface Scenario {
  id: string;
  title: string;
  kind: ScenarioKind;
  expected: Expectation;
  /** For kind 'http' (and the curl fallback). */
  step?: HttpStep;
  why: string;
}

export const DEMO_ROLE_RULE = 'credentials-need-v2';

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'aws-sdk-v3',
    title: 'AWS SDK v3 credential fetch',
    kind: 'sdk-v3',
    expected: { decision: 'allow', rules: ['imdsv2-token', 'imdsv2'], status: 200 },
    why: 'IMDSv2: a token PUT, then token-bearing GETs (no User-Agent needed)',
  },
  {
    id: 'botocore',
    title: 'botocore credential fetch',
    kind: 'botocore',
    expected: { decision: 'allow', rules: ['imdsv2-token', 'imdsv2'], status: 200 },
    why: 'IMDSv2 with the Botocore/ User-Agent',
  },
  {
    id: 'curl-v1',
    title: 'curl, tokenless (IMDSv1)',
    kind: 'curl',
    expected: { decision: 'deny', rules: ['default-deny-v1'], status: 401 },
    step: {
      method: 'GET',
      path: '/latest/meta-data/instance-id',
      headers: { 'user-agent': 'curl/8' },
    },
    why: 'tokenless requests need a known caller',
  },
  {
    id: 'ssrf-xff',
    title: 'SSRF via a proxy (X-Forwarded-For)',
    kind: 'http',
    expected: { decision: 'deny', rules: ['forwarding-header'], status: 403 },
    step: {
      method: 'PUT',
      path: '/latest/api/token',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600', 'x-forwarded-for': '203.0.113.7' },
    },
    why: 'a proxied token PUT would launder SSRF into a valid token',
  },
  {
    id: 'dns-rebinding',
    title: 'DNS rebinding (foreign Host)',
    kind: 'http',
    expected: { decision: 'deny', rules: ['host'], status: 403 },
    step: {
      method: 'GET',
      path: '/latest/meta-data/iam/security-credentials/',
      headers: { host: 'metadata.attacker.example' },
      withToken: true,
    },
    why: 'the Host must be a metadata address or the guard itself',
  },
  {
    id: 'encoded-path',
    title: 'encoded-path bypass of a path rule',
    kind: 'http',
    expected: { decision: 'deny', rules: [DEMO_ROLE_RULE], status: 403 },
    step: {
      method: 'GET',
      path: '/latest/meta-data/iam/info/%2e%2e%2Fsecurity-credentials/',
      headers: { 'user-agent': 'aws-cli/2.15.0' },
    },
    why: 'the path is normalized as the upstream sees it before rules match',
  },
  {
    id: 'header-padding',
    title: 'header padding hides X-Forwarded-For',
    kind: 'http',
    expected: { decision: 'deny', rules: ['header-count', 'header-overflow'], status: 431 },
    step: {
      method: 'PUT',
      path: '/latest/api/token',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600', 'x-forwarded-for': '203.0.113.7' },
      padding: 1020,
    },
    why: 'the policy judges every header line it would forward; more than a few dozen get 431',
  },
  {
    id: 'bogus-token',
    title: 'a token the guard never issued',
    kind: 'http',
    expected: { decision: 'allow', rules: ['imdsv2'], status: 401, token: 'unknown' },
    step: {
      method: 'GET',
      path: '/latest/meta-data/iam/security-credentials/',
      headers: {},
      token: 'AQAEAGuessedTokenNeverIssuedThroughThisGuard00000000000==',
    },
    why: 'the token ledger flags it (token unknown, an alert; guard.unknownToken: flag); the service refuses it (401)',
  },
];
