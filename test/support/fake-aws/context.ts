/** What every protocol handler of the fake AWS server receives, and the error it throws. */
import type { Faults } from './faults.js';
import type { FakeFleet } from './model.js';

export class FakeAwsError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** An assumed-role session the fake STS issued. */
export interface FakeSession {
  accessKeyId: string;
  accountId: string;
  roleName: string;
  sessionName: string;
  expiresAt: number;
}

export interface HandlerContext {
  fleet: FakeFleet;
  faults: Faults;
  action: string;
  /** The account the credentials belong to (from the access key id). */
  accountId: string;
  /** The region of the SigV4 credential scope. */
  region: string;
  accessKeyId: string;
  requestId: string;
  now: number;
  /** awsquery / ec2 form parameters (query protocols). */
  params: URLSearchParams;
  /** The parsed JSON body (JSON protocols). */
  json: Record<string, unknown>;
  sessions: Map<string, FakeSession>;
  options: {
    /** How long a metadata-options change stays `pending`, ms. */
    pendingForMs: number;
    /** How long after a CloudWatch sample's time it can be read, ms. */
    publishDelayMs: number;
  };
}

export interface HandlerResult {
  status?: number;
  body: string;
  contentType: string;
}

/** Values of a query-protocol list: Prefix.1, Prefix.2, ... (EC2) or Prefix.member.1, ... (awsquery). */
export function listParam(params: URLSearchParams, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; ; i++) {
    const v = params.get(`${prefix}.${i}`);
    if (v === null) break;
    out.push(v);
  }
  return out;
}

/** EC2 filters: Filter.N.Name and Filter.N.Value.M. */
export function ec2Filters(params: URLSearchParams, prefix = 'Filter'): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 1; ; i++) {
    const name = params.get(`${prefix}.${i}.Name`);
    if (name === null) break;
    out.set(name, listParam(params, `${prefix}.${i}.Value`));
  }
  return out;
}

/** Parses an integer parameter and checks its range (InvalidParameterValue otherwise). */
export function intParam(
  params: URLSearchParams,
  name: string,
  min: number,
  max: number,
  code = 'InvalidParameterValue',
): number | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new FakeAwsError(
      code,
      `Value ( ${raw} ) for parameter ${name} is invalid. Expected a value between ${min} and ${max}.`,
    );
  }
  return n;
}

/** Opaque pagination tokens bound to the request they came from. */
export function encodeToken(offset: number, key: string): string {
  return Buffer.from(JSON.stringify({ o: offset, k: key })).toString('base64url');
}

export function decodeToken(
  token: string | null | undefined,
  key: string,
  code = 'InvalidParameterValue',
): number {
  if (token === null || token === undefined || token === '') return 0;
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown; k?: unknown };
    if (typeof t.o === 'number' && t.k === key) return t.o;
  } catch {
    // fall through
  }
  throw new FakeAwsError(code, 'The pagination token is invalid or does not match the request.');
}
