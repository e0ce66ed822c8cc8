import { createHash, timingSafeEqual } from 'node:crypto';
import type { GuardConfig } from '../../config/schema.js';
import { ImdsguardError } from '../../errors.js';
import type { ClassifiedRequest } from '../../imds/classify.js';
import { FLAVOR_SPECS } from '../../imds/flavors.js';
import { isSecretPath } from '../../imds/secret-paths.js';
import type { Caller } from '../attribution/types.js';
import { type CallerMatch, exeMatch, netnsOf, type Tri, UNKNOWN, userMatch } from './caller-match.js';
import { HEADER_READ_REASON } from './header-reads.js';
import { describePod } from './pod-match.js';
import { compileProtocolChecks, type SecretState } from './protocol.js';
import { compileRule } from './rules.js';
import type { DecidedBy, Decision, Policy } from './types.js';

/**
 * Compiles the guard config into a Policy. All patterns, sets and digests are built here, once; the
 * per-request path allocates only the Decision it returns. Pure: hashing is the only "work" and it
 * touches no file, socket, clock or environment.
 *
 * Order of evaluation (first that decides wins):
 *  1. protocol (protocol.ts): CONNECT, a malformed target, the HTTP version, absolute-form, too many
 *     headers or too large a head, a repeated header, ambiguous framing, forwarding headers, Host,
 *     method, a wrong secret, a token PUT without a valid TTL;
 *  2. configured rules (guard.rules), in order;
 *  3. token requests from containers / other network namespaces (guard.containerTokens), and from
 *     Kubernetes pods that are not hostNetwork;
 *  4. IMDSv2 (token PUT, token-bearing requests, or the flavour's required header) -> allow;
 *  5. tokenless: the secret, a remote client (denied), a Kubernetes pod (denied), requireV2,
 *     User-Agent prefix, Metadata-Flavor: Amazon, allowed caller,
 *     else deny.
 */

/** Marker returned while probing whether a decision depends on the caller. */
const NEEDS_CALLER = Symbol('needs-caller');
const PROBE = Symbol('probe');
type CallerArg = Caller | undefined | typeof PROBE;

/** IMDS-like statuses of the default refusals (steps 3-5). */
const STATUS = {
  'container-token': 403,
  'attribution-required': 403,
  'require-v2': 401,
  'default-deny-v1': 401,
  'pod-v1': 401,
  'remote-v1': 401,
} as const;

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
  const protocol = compileProtocolChecks(config);
  const allowFlavorHeader = config.allowMetadataFlavorAmazon && spec.flavor === 'aws';
  const alertHeaderReads = config.alertHeaderAllowedReads;
  /** A tokenless read allowed by a header alone: an alert when it reads credentials or user-data. */
  const byHeader = (r: ClassifiedRequest, rule: string, reason: string): Decision =>
    alertHeaderReads && isSecretPath(r.path)
      ? allow(rule, `${reason}: ${HEADER_READ_REASON}`, true)
      : allow(rule, reason);
  const token = spec.token;
  const required = spec.requiredHeader;
  const noScheme = token === undefined && required === undefined;

  const deny = (rule: keyof typeof STATUS, reason: string): Decision => ({
    decision: 'deny',
    rule,
    reason,
    status: STATUS[rule],
    alert: true,
    by: 'default',
    everyMode: false,
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

  function secretState(r: ClassifiedRequest): SecretState {
    if (r.authValue === undefined || secretDigest === undefined) return 'absent';
    const d = createHash('sha256').update(r.authValue).digest();
    return timingSafeEqual(d, secretDigest) ? 'valid' : 'invalid';
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
    const secret = secretState(r);
    const refused = protocol(r, secret);
    if (refused !== undefined) return refused;
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
    if (r.remote && token === undefined && secret !== 'valid') {
      // gcp, azure, oci, digitalocean: no token, and a header any remote client can send is no proof
      return deny(
        'remote-v1',
        `request from a remote client: the ${spec.flavor} metadata service has no session token, so only the secret header or a rule allows one`,
      );
    }
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
    if (r.remote) {
      // Another host, through a listener guard.allowRemoteListen opened: no header it sends proves
      // anything, and attribution cannot see its processes. Only the secret (above) or a configured
      // rule (step 2) lets its tokenless requests through.
      return deny(
        'remote-v1',
        'tokenless (IMDSv1) request from a remote client: only the secret header or a rule allows one',
      );
    }
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
          return byHeader(r, 'ua-allowlist', `tokenless request from an allowed User-Agent (${p})`);
      }
    }
    if (allowFlavorHeader && r.metadataFlavorAmazon) {
      return byHeader(r, 'metadata-flavor', 'tokenless request with Metadata-Flavor: Amazon');
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
