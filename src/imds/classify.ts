import { FLAVOR_SPECS, type Flavor, type FlavorSpec, FORWARDING_HEADERS } from './flavors.js';
import { normalizeTarget, type TargetForm } from './path.js';
import type { ImdsVersion } from './version.js';

/**
 * Request classification: what kind of metadata request this is (IMDSv1, IMDSv2, token request) for
 * a flavour, with the facts the policy needs. Pure: no I/O, no clock.
 *
 * version: 'token' is the token PUT; 'v2' is a request carrying the flavour's SSRF-proof credential
 * (a session token for aws/alibaba, the required header for gcp/azure/oci); 'v1' is a request without
 * it; 'unknown' when the target cannot be parsed.
 */

/** Header values as node:http gives them (lower-case names). */
export type HeaderMap = Readonly<Record<string, string | string[] | undefined>>;

export interface RequestInput {
  method: string;
  /** The raw request-target (req.url). */
  target: string;
  headers: HeaderMap;
  /** Raw header name/value pairs (req.rawHeaders), used to count duplicates. */
  rawHeaders?: readonly string[];
  /** The guard's side of the connection: its own address is a valid Host. */
  local?: { address: string; port: number };
  /** Whether the client's address is one of this host's (same network namespace), from the socket. */
  clientNetns?: 'host' | 'other';
}

export interface ClassifiedRequest {
  method: string;
  form: TargetForm;
  /** Decoded normalized path (no query); '' when the target is malformed. */
  path: string;
  /** Canonical path plus query, sent upstream. */
  forwardPath: string;
  /** Set when the target cannot be normalized. */
  pathError?: string;
  /** True when normalization changed the path. */
  pathChanged: boolean;
  /** Host named by an absolute-form target. */
  authority?: string;
  version: ImdsVersion;
  flavor: Flavor;
  spec: FlavorSpec;
  userAgent?: string;
  /** The Host header; undefined when missing. */
  host?: string;
  /** Number of Host headers (more than one is refused). */
  hostCount: number;
  /** Forwarding headers present (x-forwarded-for, forwarded, x-forwarded-host). */
  forwardingHeaders: string[];
  /** On the flavour's token path. */
  tokenPath: boolean;
  /** A token header is present (its value is never kept). */
  hasToken: boolean;
  /** The token PUT's TTL header value, as sent (not a secret). */
  ttl?: string;
  /** The flavour's required header is present with the right value. */
  requiredHeader: boolean;
  /** `Metadata-Flavor: Amazon` is present. */
  metadataFlavorAmazon: boolean;
  /** The value of the guard's secret header, if sent. Compared in constant time; never recorded. */
  authValue?: string;
  /** Set when the framing headers are ambiguous (CL with TE, duplicate CL, odd TE). */
  smuggling?: string;
  local?: { address: string; port: number };
  /** 'host' when the client's address is one of this host's, 'other' when not (from the socket). */
  clientNetns?: 'host' | 'other';
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Counts framing headers in rawHeaders; returns why the framing is ambiguous, or undefined. */
export function framingProblem(rawHeaders: readonly string[] | undefined): string | undefined {
  if (!rawHeaders) return undefined;
  let cl = 0;
  let te = 0;
  let teValue = '';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 14 && name.toLowerCase() === 'content-length') cl++;
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      te++;
      teValue = (rawHeaders[i + 1] ?? '').trim().toLowerCase();
    }
  }
  if (cl > 0 && te > 0) return 'both Content-Length and Transfer-Encoding';
  if (cl > 1) return 'duplicate Content-Length';
  if (te > 1) return 'duplicate Transfer-Encoding';
  if (te === 1 && teValue !== 'chunked') return `unsupported Transfer-Encoding "${teValue}"`;
  return undefined;
}

export function classifyRequest(input: RequestInput, flavor: Flavor, authHeader: string): ClassifiedRequest {
  const spec = FLAVOR_SPECS[flavor];
  const h = input.headers;
  const method = input.method.toUpperCase();
  const norm = normalizeTarget(input.target);
  const forwardingHeaders: string[] = [];
  for (const name of FORWARDING_HEADERS) if (h[name] !== undefined) forwardingHeaders.push(name);
  const hostRaw = h['host'];
  const hostCount = hostRaw === undefined ? 0 : Array.isArray(hostRaw) ? hostRaw.length : 1;
  const token = spec.token;
  const path = norm.ok ? norm.path : '';
  const tokenPath = token !== undefined && path === token.path;
  const hasToken = token !== undefined && h[token.tokenHeader] !== undefined;
  const req = spec.requiredHeader;
  const requiredHeader =
    req !== undefined && (first(h[req.name]) ?? '').trim().toLowerCase() === req.value.toLowerCase();
  let version: ImdsVersion;
  if (!norm.ok || method === 'CONNECT') version = 'unknown';
  else if (tokenPath && method === 'PUT') version = 'token';
  else if (token !== undefined) version = hasToken ? 'v2' : 'v1';
  else if (req !== undefined) version = requiredHeader ? 'v2' : 'v1';
  else version = 'v1';
  const out: ClassifiedRequest = {
    method,
    form: norm.form,
    path,
    forwardPath: norm.ok ? norm.forwardPath : '',
    pathChanged: norm.ok ? norm.changed : false,
    version,
    flavor,
    spec,
    hostCount,
    forwardingHeaders,
    tokenPath,
    hasToken,
    requiredHeader,
    metadataFlavorAmazon: (first(h['metadata-flavor']) ?? '').trim().toLowerCase() === 'amazon',
  };
  if (!norm.ok) out.pathError = norm.reason;
  if (norm.ok && norm.authority !== undefined) out.authority = norm.authority;
  const ua = first(h['user-agent']);
  if (ua !== undefined) out.userAgent = ua;
  const host = first(hostRaw);
  if (host !== undefined) out.host = host;
  if (token !== undefined) {
    const ttl = first(h[token.ttlHeader]);
    if (ttl !== undefined) out.ttl = ttl;
  }
  const auth = first(h[authHeader]);
  if (auth !== undefined) out.authValue = auth;
  const smuggling = framingProblem(input.rawHeaders);
  if (smuggling !== undefined) out.smuggling = smuggling;
  if (input.local) out.local = input.local;
  if (input.clientNetns) out.clientNetns = input.clientNetns;
  return out;
}
