import { FLAVOR_SPECS, type Flavor, type FlavorSpec } from './flavors.js';
import { normalizeTarget, type TargetForm } from './path.js';
import type { ImdsVersion } from './version.js';

/**
 * Request classification: what kind of metadata request this is (IMDSv1, IMDSv2, token request) for
 * a flavour, with the facts the policy needs. Pure: no I/O, no clock.
 *
 * Every fact comes from the raw header list, exactly as it arrived and as it will be forwarded
 * (node's `rawHeaders`), never from node's folded `headers` object: a repeated header, a second
 * casing of a name, or a header past some count is seen here as it is on the wire.
 *
 * version: 'token' is the token PUT; 'v2' a request carrying the flavour's SSRF-proof credential
 * (a non-blank session token for aws/alibaba, the required header for gcp/azure/oci); 'v1' one
 * without it; 'unknown' when the target cannot be parsed.
 */

export interface RequestInput {
  method: string;
  /** The raw request-target (req.url). */
  target: string;
  /** "1.1", "1.0" (req.httpVersion); default "1.1". */
  httpVersion?: string;
  /** Raw header name/value pairs (req.rawHeaders): the list the policy judges and the proxy forwards. */
  rawHeaders: readonly string[];
  /** The guard's side of the connection: its own address is a valid Host. */
  local?: { address: string; port: number };
  /** Whether the client's address is one of this host's (same network namespace), from the socket. */
  clientNetns?: 'host' | 'other';
  /**
   * The client is remote: it reached a non-loopback address of the guard from an address that is
   * not one of this host's (src/guard/proxy/local-addresses.ts, isRemoteClient).
   */
  remote?: boolean;
}

export interface ClassifiedRequest {
  method: string;
  httpVersion: string;
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
  /** Header names, lower-case, in order, every copy. */
  names: readonly string[];
  /** How many header lines the request has. */
  headerCount: number;
  /**
   * Size of the request head in bytes: the request line, each header as name, ": ", value and CRLF,
   * and the final CRLF (whitespace beyond one space after the colon is not seen: node drops it).
   */
  headBytes: number;
  /** Lower-case names that appear more than once (in any casing). */
  duplicates: readonly string[];
  userAgent?: string;
  /** The (first) Host header; undefined when missing. */
  host?: string;
  /** On the flavour's token path. */
  tokenPath: boolean;
  /** A token header with a non-blank value is present (its value is never kept here). */
  hasToken: boolean;
  /** The token PUT's TTL header value, as sent (not a secret). */
  ttl?: string;
  /** The flavour's required header is present with the right value. */
  requiredHeader: boolean;
  /** `Metadata-Flavor: Amazon` is present. */
  metadataFlavorAmazon: boolean;
  /** The value of the guard's secret header, if sent. Compared in constant time; never recorded. */
  authValue?: string;
  /** Set when the framing headers are ambiguous (CL with TE, odd TE). */
  smuggling?: string;
  /** The request announces a body (Content-Length other than 0, or Transfer-Encoding). */
  hasBody: boolean;
  /** The Content-Length value, when sent. */
  contentLength?: string;
  local?: { address: string; port: number };
  /** 'host' when the client's address is one of this host's, 'other' when not (from the socket). */
  clientNetns?: 'host' | 'other';
  /** Set when the client is remote (another host, through a non-loopback listener). */
  remote?: true;
}

/** Returns why the framing headers are ambiguous, or undefined. Duplicates are judged elsewhere. */
export function framingProblem(rawHeaders: readonly string[]): string | undefined {
  let cl = 0;
  let te = 0;
  let teValue = '';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (name === 'content-length') cl++;
    else if (name === 'transfer-encoding') {
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
  const raw = input.rawHeaders;
  const method = input.method.toUpperCase();
  const httpVersion = input.httpVersion ?? '1.1';
  const norm = normalizeTarget(input.target);
  const names: string[] = [];
  const first = new Map<string, string>();
  const seen = new Set<string>();
  const duplicates: string[] = [];
  // request line: METHOD SP target SP HTTP/x.y CRLF, then the final CRLF
  let headBytes = input.method.length + input.target.length + httpVersion.length + 9 + 2;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] ?? '';
    headBytes += name.length + value.length + 4;
    names.push(name);
    if (seen.has(name)) {
      if (!duplicates.includes(name)) duplicates.push(name);
    } else {
      seen.add(name);
      first.set(name, value);
    }
  }
  const token = spec.token;
  const path = norm.ok ? norm.path : '';
  const tokenPath = token !== undefined && path === token.path;
  const tokenValue = token === undefined ? undefined : first.get(token.tokenHeader);
  const hasToken = tokenValue !== undefined && tokenValue.trim() !== '';
  const req = spec.requiredHeader;
  const requiredHeader =
    req !== undefined && (first.get(req.name) ?? '').trim().toLowerCase() === req.value.toLowerCase();
  let version: ImdsVersion;
  if (!norm.ok || method === 'CONNECT') version = 'unknown';
  else if (tokenPath && method === 'PUT') version = 'token';
  else if (token !== undefined) version = hasToken ? 'v2' : 'v1';
  else if (req !== undefined) version = requiredHeader ? 'v2' : 'v1';
  else version = 'v1';
  const cl = first.get('content-length');
  const out: ClassifiedRequest = {
    method,
    httpVersion,
    form: norm.form,
    path,
    forwardPath: norm.ok ? norm.forwardPath : '',
    pathChanged: norm.ok ? norm.changed : false,
    version,
    flavor,
    spec,
    names,
    headerCount: names.length,
    headBytes,
    duplicates,
    tokenPath,
    hasToken,
    requiredHeader,
    metadataFlavorAmazon: (first.get('metadata-flavor') ?? '').trim().toLowerCase() === 'amazon',
    hasBody: (cl !== undefined && cl.trim() !== '0') || seen.has('transfer-encoding'),
  };
  if (cl !== undefined) out.contentLength = cl;
  if (!norm.ok) out.pathError = norm.reason;
  if (norm.ok && norm.authority !== undefined) out.authority = norm.authority;
  const ua = first.get('user-agent');
  if (ua !== undefined) out.userAgent = ua;
  const host = first.get('host');
  if (host !== undefined) out.host = host;
  if (token !== undefined) {
    const ttl = first.get(token.ttlHeader);
    if (ttl !== undefined) out.ttl = ttl;
  }
  const auth = first.get(authHeader);
  if (auth !== undefined) out.authValue = auth;
  const smuggling = framingProblem(raw);
  if (smuggling !== undefined) out.smuggling = smuggling;
  if (input.local) out.local = input.local;
  if (input.clientNetns) out.clientNetns = input.clientNetns;
  if (input.remote) out.remote = true;
  return out;
}
