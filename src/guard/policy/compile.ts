import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { GuardConfig } from '../../config/schema.js';
import { ImdsguardError } from '../../errors.js';
import type { ClassifiedRequest } from '../../imds/classify.js';
import { FLAVOR_SPECS } from '../../imds/flavors.js';
import type { Caller } from '../attribution/types.js';
import { type CallerMatch, exeMatch, netnsOf, type Tri, UNKNOWN, userMatch } from './caller-match.js';
import { describePod } from './pod-match.js';
import { compileRule } from './rules.js';
import type { DecidedBy, Decision, Policy } from './types.js';

/**
 * Compiles the guard config into a Policy. All patterns, sets and digests are built here, once; the
 * per-request path allocates only the Decision it returns. Pure: hashing is the only "work" and it
 * touches no file, socket, clock or environment.
 *
 * Order of evaluation (first that decides wins):
 *  1. protocol: malformed path, absolute-form, CONNECT, ambiguous framing, forwarding headers, Host,
 *     method, a wrong secret, a token PUT without a valid TTL;
 *  2. configured rules (guard.rules), in order;
 *  3. token requests from containers / other network namespaces (guard.containerTokens), and from
 *     Kubernetes pods that are not hostNetwork;
 *  4. IMDSv2 (token PUT, token-bearing requests, or the flavour's required header) -> allow;
 *  5. tokenless: the secret, a Kubernetes pod (denied), requireV2, User-Agent prefix,
 *     Metadata-Flavor: Amazon, allowed caller,
 *     else deny.
 */

/** Marker returned while probing whether a decision depends on the caller. */
const NEEDS_CALLER = Symbol('needs-caller');
const PROBE = Symbol('probe');
type CallerArg = Caller | undefined | typeof PROBE;

/** AWS-like statuses for refusals by rule. */
const STATUS = {
  'malformed-path': 400,
  'absolute-form': 400,
  connect: 405,
  smuggling: 400,
  'forwarding-header': 403,
  host: 403,
  method: 405,
  'auth-header': 403,
  'token-ttl': 400,
  'container-token': 403,
  'attribution-required': 403,
  'require-v2': 401,
  'default-deny-v1': 401,
  'pod-v1': 401,
} as const;

/** The refusals of step 1 (protocol checks), as opposed to the defaults of steps 3-5. */
const PROTOCOL_RULES: ReadonlySet<string> = new Set([
  'malformed-path',
  'absolute-form',
  'connect',
  'smuggling',
  'forwarding-header',
  'host',
  'method',
  'auth-header',
  'token-ttl',
]);

/** Requests that cannot be forwarded or answered safely: refused in every mode. */
const EVERY_MODE_RULES: ReadonlySet<string> = new Set(['connect', 'smuggling', 'malformed-path']);

function hostKey(host: string): string {
  let h = host.trim().toLowerCase();
  // strip a trailing dot of the name part (host. or host.:80)
  h = h.replace(/\.(?=(:\d+)?$)/, '');
  return h;
}

function authorityOf(address: string, port: number): string[] {
  const a = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const host = isIP(a) === 6 ? `[${a}]` : a;
  return port === 80 ? [host, `${host}:80`] : [`${host}:${port}`];
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export interface CompileOptions {
  /**
   * Whether a process resolver is available. Defaults to guard.attribution.enabled; the guard passes
   * false when it runs without a resolver, and caller rules then fail to compile.
   */
  attribution?: boolean;
}

export function compilePolicy(config: GuardConfig, options: CompileOptions = {}): Policy {
  const spec = FLAVOR_SPECS[config.flavor];
  const attribution = config.attribution.enabled && options.attribution !== false;
  const rules = config.rules.map(compileRule);
  for (const [i, r] of rules.entries()) {
    if (r.callerTests.length > 0 && !attribution) {
      throw new ImdsguardError(
        'IMDSGUARD_E_RULE',
        `guard.rules[${i}] (${r.name}) needs the caller's ${r.callerTests.map((t) => t.needs).join(' and ')}, but attribution is off (guard.attribution.enabled is false, or no process resolver is available)`,
        { details: { rule: JSON.stringify(config.rules[i]) } },
      );
    }
  }
  if (!attribution && (config.allowExe.length > 0 || config.allowUser.length > 0)) {
    throw new ImdsguardError(
      'IMDSGUARD_E_RULE',
      'guard.allowExe / guard.allowUser need attribution, but attribution is off (guard.attribution.enabled is false, or no process resolver is available)',
    );
  }
  const allowedTests: CallerMatch[] = [];
  if (config.allowExe.length > 0) allowedTests.push(exeMatch(config.allowExe));
  if (config.allowUser.length > 0) allowedTests.push(userMatch(config.allowUser));
  const containerTokens = config.containerTokens === 'deny' && attribution && spec.token !== undefined;
  // Pods (attribution names them) get the instance's hop-limit-1 behaviour and no IMDSv1 by default.
  const podAware = attribution && spec.token !== undefined;
  const usesCaller =
    containerTokens || podAware || allowedTests.length > 0 || rules.some((r) => r.callerTests.length > 0);

  const secretDigest =
    config.authSecret === undefined ? undefined : createHash('sha256').update(config.authSecret).digest();
  const authHeaderLabel = config.authHeader;
  const uaPrefixes = [...config.allowUserAgents];
  const hosts = new Set<string>();
  for (const a of spec.addresses) for (const k of authorityOf(a, 80)) hosts.add(k);
  for (const n of spec.hostnames) {
    hosts.add(n);
    hosts.add(`${n}:80`);
  }
  for (const h of config.allowHosts) hosts.add(hostKey(h));
  const token = spec.token;
  const required = spec.requiredHeader;
  const noScheme = token === undefined && required === undefined;

  const deny = (rule: keyof typeof STATUS, reason: string): Decision => ({
    decision: 'deny',
    rule,
    reason,
    status: STATUS[rule],
    alert: true,
    by: PROTOCOL_RULES.has(rule) ? 'protocol' : 'default',
    everyMode: EVERY_MODE_RULES.has(rule),
  });
  const allow = (rule: string, reason: string, alert = false, by: DecidedBy = 'default'): Decision => ({
    decision: 'allow',
    rule,
    reason,
    status: 200,
    alert,
    by,
    everyMode: false,
  });

  function secretState(r: ClassifiedRequest): 'absent' | 'valid' | 'invalid' {
    if (r.authValue === undefined || secretDigest === undefined) return 'absent';
    const d = createHash('sha256').update(r.authValue).digest();
    return timingSafeEqual(d, secretDigest) ? 'valid' : 'invalid';
  }

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

  function callerTri(
    tests: readonly CallerMatch[],
    caller: CallerArg,
    any: boolean,
  ): Tri | typeof NEEDS_CALLER {
    if (tests.length === 0) return !any;
    if (caller === PROBE) return NEEDS_CALLER;
    if (caller === undefined) return UNKNOWN;
    let unknown = false;
    for (const t of tests) {
      const v = t.test(caller);
      if (any && v === true) return true;
      if (!any && v === false) return false;
      if (v === UNKNOWN) unknown = true;
    }
    if (unknown) return UNKNOWN;
    return !any;
  }

  function why(caller: CallerArg): string {
    if (caller === undefined || caller === PROBE) return 'attribution did not run';
    return caller.error ?? `attribution was ${caller.resolved}`;
  }

  function evaluate(r: ClassifiedRequest, caller: CallerArg): Decision | typeof NEEDS_CALLER {
    // 1. protocol
    if (r.form === 'authority' || r.method === 'CONNECT')
      return deny('connect', 'CONNECT requests are refused');
    if (r.pathError !== undefined) return deny('malformed-path', `malformed request target: ${r.pathError}`);
    if (r.form === 'absolute')
      return deny(
        'absolute-form',
        'absolute-form request target (the client treats the guard as a forward proxy)',
      );
    if (r.smuggling !== undefined) return deny('smuggling', `ambiguous message framing: ${r.smuggling}`);
    if (r.forwardingHeaders.length > 0) {
      return deny(
        'forwarding-header',
        `request carries ${r.forwardingHeaders.join(', ')}: proxied requests (SSRF through a proxy) are refused`,
      );
    }
    if (r.hostCount !== 1) {
      return deny(
        'host',
        r.hostCount === 0 ? 'request has no Host header' : 'request has more than one Host header',
      );
    }
    if (!hostAllowed(r)) {
      return deny(
        'host',
        `Host "${String(r.host).slice(0, 100)}" is not a metadata address (DNS rebinding?)`,
      );
    }
    const m = r.method;
    if (m === 'PUT') {
      if (!r.tokenPath) return deny('method', `PUT is only allowed on the token path`);
    } else if (m !== 'GET' && m !== 'HEAD') {
      return deny('method', `method ${m.slice(0, 20)} is not allowed (GET, HEAD, or PUT on the token path)`);
    }
    const secret = secretState(r);
    if (secret === 'invalid') return deny('auth-header', `wrong value in the ${authHeaderLabel} header`);
    if (r.version === 'token' && token !== undefined) {
      const ttl = r.ttl;
      if (ttl === undefined) return deny('token-ttl', `token request without ${token.ttlHeader}`);
      if (!/^\d{1,6}$/.test(ttl.trim()) || Number(ttl) < token.minTtl || Number(ttl) > token.maxTtl) {
        return deny('token-ttl', `token TTL must be an integer ${token.minTtl}..${token.maxTtl}`);
      }
    }
    // 2. configured rules
    for (const rule of rules) {
      let match = true;
      for (const t of rule.requestTests) {
        if (!t(r)) {
          match = false;
          break;
        }
      }
      if (!match) continue;
      const c = callerTri(rule.callerTests, caller, false);
      if (c === NEEDS_CALLER) return NEEDS_CALLER;
      if (c === false) continue;
      if (c === UNKNOWN) {
        return {
          ...deny(
            'attribution-required',
            `rule ${rule.name} needs the caller's ${rule.callerTests.map((t) => t.needs).join(' and ')}, which is unknown: ${why(caller)}`,
          ),
          by: 'rule',
        };
      }
      return rule.action === 'allow'
        ? allow(rule.name, rule.reason, rule.alert, 'rule')
        : {
            decision: 'deny',
            rule: rule.name,
            reason: rule.reason,
            status: 403,
            alert: true,
            by: 'rule',
            everyMode: false,
          };
    }
    // 3. token requests from containers / other namespaces
    if (r.version === 'token' && containerTokens) {
      // The guard's socket already tells whether the client shares its network namespace (its
      // address is one of this host's); attribution may add a container identity.
      const socketNs = r.clientNetns;
      if (caller === PROBE) {
        if (socketNs !== 'host') return NEEDS_CALLER;
      } else {
        const c = caller;
        const ns = c?.netns ?? socketNs ?? (c === undefined ? undefined : netnsOf(c));
        // A hostNetwork pod is where the instance's hop limit of 1 lets a token through: host rules.
        const pod = c?.pod;
        const inContainer = pod ? !pod.hostNetwork : c?.container !== undefined || ns === 'other';
        if (inContainer || ns === undefined) {
          // A pod is let through only by a rule that names it (above): its executable and user are
          // the pod's own to choose, so allowExe and allowUser do not count for it.
          const allowed = secret === 'valid' ? true : pod ? false : callerTri(allowedTests, caller, true);
          if (allowed !== true) {
            if (pod) {
              return deny(
                'container-token',
                `token request from ${describePod(pod)} (it would defeat the hop limit): allow the pod with a rule`,
              );
            }
            if (inContainer) {
              return deny(
                'container-token',
                'token request from a container or another network namespace (it would defeat the hop limit)',
              );
            }
            return deny(
              'attribution-required',
              `token requests from other network namespaces are refused unless allowed, and the caller's namespace is unknown: ${why(caller)}`,
            );
          }
        }
      }
    }
    // 4. IMDSv2
    if (r.version === 'token') return allow('imdsv2-token', 'IMDSv2 token request');
    if (r.version === 'v2') {
      return allow(
        'imdsv2',
        token !== undefined
          ? 'request carries an IMDSv2 token'
          : `request carries ${required?.name ?? 'the required header'}`,
      );
    }
    // 5. tokenless
    if (required !== undefined) {
      return {
        decision: 'deny',
        rule: 'required-header',
        reason: `request lacks the ${required.name}: ${required.value} header the ${spec.flavor} metadata service requires`,
        status: required.statusWithout,
        alert: true,
        by: 'default',
        everyMode: false,
      };
    }
    if (secret === 'valid')
      return allow('auth-header', `tokenless request with the ${authHeaderLabel} secret`);
    if (podAware) {
      // Pods get no IMDSv1 unless a rule allows them: neither a User-Agent nor allowExe/allowUser,
      // which the pod chooses itself, lets a pod's tokenless request through.
      if (caller === PROBE) {
        if (r.clientNetns === 'other') return NEEDS_CALLER;
      } else if (caller?.pod) {
        return deny(
          'pod-v1',
          `tokenless (IMDSv1) request from ${describePod(caller.pod)}: pods use IMDSv2, or a rule that allows the pod`,
        );
      }
    }
    const allowed = callerTri(allowedTests, caller, true);
    if (config.requireV2) {
      if (allowed === NEEDS_CALLER) return NEEDS_CALLER;
      if (allowed === true)
        return allow('allowed-caller', 'tokenless request from an allowed executable or user');
      if (allowed === UNKNOWN) {
        return deny(
          'attribution-required',
          `IMDSv2 is required unless the caller is allowed, and the caller is unknown: ${why(caller)}`,
        );
      }
      return deny('require-v2', 'IMDSv2 is required on this host: tokenless requests are refused');
    }
    if (noScheme) return allow('no-token-scheme', `the ${spec.flavor} metadata service has no token scheme`);
    const ua = r.userAgent;
    if (ua !== undefined) {
      for (const p of uaPrefixes) {
        if (ua.startsWith(p))
          return allow('ua-allowlist', `tokenless request from an allowed User-Agent (${p})`);
      }
    }
    if (r.metadataFlavorAmazon && spec.flavor === 'aws') {
      return allow('metadata-flavor', 'tokenless request with Metadata-Flavor: Amazon');
    }
    if (allowed === NEEDS_CALLER) return NEEDS_CALLER;
    if (allowed === true)
      return allow('allowed-caller', 'tokenless request from an allowed executable or user');
    if (allowed === UNKNOWN) {
      return deny(
        'attribution-required',
        `tokenless request: only known callers may use IMDSv1, and the caller is unknown: ${why(caller)}`,
      );
    }
    return deny('default-deny-v1', 'tokenless (IMDSv1) request from an unknown caller: use IMDSv2');
  }

  return {
    usesCaller,
    decide(request, caller) {
      const d = evaluate(request, caller);
      // evaluate only returns NEEDS_CALLER when probing
      return d as Decision;
    },
    needsCaller(request) {
      if (!usesCaller) return false;
      return evaluate(request, PROBE) === NEEDS_CALLER;
    },
  };
}
