import { isIP } from 'node:net';
import type { GuardConfig } from '../../config/schema.js';
import type { ClassifiedRequest } from '../../imds/classify.js';
import { FLAVOR_SPECS } from '../../imds/flavors.js';
import type { Decision } from './types.js';

/**
 * Step 1 of the policy: the protocol checks, compiled once. They judge the request exactly as it
 * will be forwarded (the raw header list) and hold whatever the configured rules say. Pure.
 *
 * Refusals marked everyMode are requests that cannot be forwarded or answered safely (a CONNECT, a
 * malformed target, ambiguous framing, too many or repeated headers): monitor refuses them too and
 * trap does not answer them. The others (forwarding headers, Host, method, the secret, the TTL) are
 * policy: monitor forwards and flags them.
 */

/** Each protocol refusal: its IMDS-like status and whether it holds in every mode. */
export const PROTOCOL_REFUSALS = {
  connect: { status: 405, everyMode: true },
  'malformed-path': { status: 400, everyMode: true },
  'http-version': { status: 505, everyMode: true },
  'absolute-form': { status: 400, everyMode: true },
  'header-count': { status: 431, everyMode: true },
  'header-overflow': { status: 431, everyMode: true },
  'duplicate-header': { status: 400, everyMode: true },
  smuggling: { status: 400, everyMode: true },
  'forwarding-header': { status: 403, everyMode: false },
  host: { status: 403, everyMode: false },
  method: { status: 405, everyMode: false },
  'auth-header': { status: 403, everyMode: false },
  'token-ttl': { status: 400, everyMode: false },
} as const;
export type ProtocolRule = keyof typeof PROTOCOL_REFUSALS;

export function protocolRefusal(rule: ProtocolRule, reason: string): Decision {
  const r = PROTOCOL_REFUSALS[rule];
  return {
    decision: 'deny',
    rule,
    reason,
    status: r.status,
    alert: true,
    by: 'protocol',
    everyMode: r.everyMode,
  };
}

/** A forwarding header's name as a proxy may spell it: X_Forwarded_For is X-Forwarded-For. */
export function forwardingName(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

function hostKey(host: string): string {
  // lower-case, and without a trailing dot of the name part (host. or host.:80)
  return host
    .trim()
    .toLowerCase()
    .replace(/\.(?=(:\d+)?$)/, '');
}

function authorityOf(address: string, port: number): string[] {
  const a = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const host = isIP(a) === 6 ? `[${a}]` : a;
  return port === 80 ? [host, `${host}:80`] : [`${host}:${port}`];
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export type SecretState = 'absent' | 'valid' | 'invalid';

/** Compiles step 1: returns the refusal, or undefined when the request passes every check. */
export function compileProtocolChecks(config: GuardConfig) {
  const spec = FLAVOR_SPECS[config.flavor];
  const token = spec.token;
  const limits = config.limits;
  const forwarding = new Set(config.forwardingHeaders.map(forwardingName));
  const hosts = new Set<string>();
  for (const a of spec.addresses) for (const k of authorityOf(a, 80)) hosts.add(k);
  for (const n of spec.hostnames) {
    hosts.add(n);
    hosts.add(`${n}:80`);
  }
  for (const h of config.allowHosts) hosts.add(hostKey(h));

  function hostAllowed(r: ClassifiedRequest): boolean {
    const key = hostKey(r.host as string);
    if (hosts.has(key)) return true;
    if (r.local) {
      for (const k of authorityOf(r.local.address, r.local.port)) if (k === key) return true;
      if (isLoopback(r.local.address)) {
        if (key === `localhost:${r.local.port}` || (r.local.port === 80 && key === 'localhost')) return true;
      }
    }
    return false;
  }

  return function check(r: ClassifiedRequest, secret: SecretState): Decision | undefined {
    if (r.form === 'authority' || r.method === 'CONNECT')
      return protocolRefusal('connect', 'CONNECT requests are refused');
    if (r.pathError !== undefined)
      return protocolRefusal('malformed-path', `malformed request target: ${r.pathError}`);
    if (r.httpVersion !== '1.1' && r.httpVersion !== '1.0') {
      return protocolRefusal('http-version', `HTTP/${r.httpVersion.slice(0, 8)} is not HTTP/1.0 or HTTP/1.1`);
    }
    if (r.form === 'absolute') {
      return protocolRefusal(
        'absolute-form',
        'absolute-form request target (the client treats the guard as a forward proxy)',
      );
    }
    if (r.headerCount > limits.maxHeaderCount) {
      return protocolRefusal(
        'header-count',
        `request has ${r.headerCount} headers, more than ${limits.maxHeaderCount} (header padding?)`,
      );
    }
    if (r.headBytes > limits.maxHeaderBytes) {
      return protocolRefusal(
        'header-overflow',
        `request head of ${r.headBytes} bytes is larger than ${limits.maxHeaderBytes}`,
      );
    }
    if (r.duplicates.length > 0) {
      return protocolRefusal(
        'duplicate-header',
        `request repeats ${r.duplicates.slice(0, 5).join(', ')}: the policy and the upstream could read different copies`,
      );
    }
    if (r.smuggling !== undefined)
      return protocolRefusal('smuggling', `ambiguous message framing: ${r.smuggling}`);
    const proxied = r.names.filter((n) => forwarding.has(forwardingName(n)));
    if (proxied.length > 0) {
      return protocolRefusal(
        'forwarding-header',
        `request carries ${proxied.slice(0, 5).join(', ')}: proxied requests (SSRF through a proxy) are refused`,
      );
    }
    if (r.host === undefined) return protocolRefusal('host', 'request has no Host header');
    if (!hostAllowed(r)) {
      return protocolRefusal(
        'host',
        `Host "${r.host.slice(0, 100)}" is not a metadata address (DNS rebinding?)`,
      );
    }
    const m = r.method;
    if (m === 'PUT') {
      if (!r.tokenPath) return protocolRefusal('method', 'PUT is only allowed on the token path');
    } else if (m !== 'GET' && m !== 'HEAD') {
      return protocolRefusal(
        'method',
        `method ${m.slice(0, 20)} is not allowed (GET, HEAD, or PUT on the token path)`,
      );
    }
    if (secret === 'invalid')
      return protocolRefusal('auth-header', `wrong value in the ${config.authHeader} header`);
    if (r.version === 'token' && token !== undefined) {
      const ttl = r.ttl;
      if (ttl === undefined) return protocolRefusal('token-ttl', `token request without ${token.ttlHeader}`);
      if (!/^\d{1,6}$/.test(ttl.trim()) || Number(ttl) < token.minTtl || Number(ttl) > token.maxTtl) {
        return protocolRefusal('token-ttl', `token TTL must be an integer ${token.minTtl}..${token.maxTtl}`);
      }
    }
    return undefined;
  };
}
