import { isIP } from 'node:net';
import { z } from 'zod';
import { GUARD_MODES } from '../guard/events/types.js';
import {
  DEFAULT_ALLOWED_USER_AGENTS,
  DEFAULT_AUTH_HEADER,
  DEFAULT_FORWARDING_HEADERS,
} from '../guard/policy/defaults.js';
import { UNKNOWN_TOKEN_ACTIONS } from '../guard/tokens/verdict.js';
import { FLAVOR_SPECS, FLAVORS } from '../imds/flavors.js';
import { IMDS_VERSIONS } from '../imds/version.js';
import { formatListen, isLoopbackHost, parseListen } from '../net/listen.js';
import { adminConfigSchema } from './admin.js';
import { alertsConfigSchema } from './alerts.js';
import { eventsConfigSchema } from './events.js';
import { tokenLedgerSchema } from './tokens.js';

/**
 * The configuration schema: one object with the sections guard, events, alerts and admin. Unknown
 * keys are refused. Every size and time has a finite default with its unit in the name
 * (Ms = milliseconds, Bytes = bytes). docs/config.md documents every key.
 */

const oneOrMany = <T extends z.ZodType>(item: T) =>
  z.union([item, z.array(item)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

const absolutePath = z
  .string()
  .refine((s) => s.startsWith('/'), 'must be an absolute path')
  .refine((s) => !s.includes('\0'), 'must not contain NUL');

const pathPattern = z.string().refine((s) => s.startsWith('/'), 'must start with "/"');

const userRef = z.union([z.string().min(1), z.number().int().nonnegative()]);

/** A Kubernetes name (namespace, pod, container: DNS-1123, at most 253 characters) or a glob of one. */
const POD_NAME_GLOB = /^[a-z0-9.*?-]{1,253}$/;
const podNameGlob = z
  .string()
  .regex(
    POD_NAME_GLOB,
    'must be a Kubernetes name or a glob of one (lowercase letters, digits, "-", ".", "*", "?")',
  );

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name')
  .transform((s) => s.toLowerCase());

const listenAddress = z.string().transform((s, ctx) => {
  try {
    return parseListen(s, 'listen');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^listen: /, '') });
    return z.NEVER;
  }
});

export interface UpstreamAddress {
  href: string;
  host: string;
  port: number;
  /** host[:port] as in a Host header. */
  authority: string;
}

const upstreamUrl = z.string().transform((s, ctx): UpstreamAddress => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    ctx.addIssue({ code: 'custom', message: `must be a URL such as http://169.254.169.254, got "${s}"` });
    return z.NEVER;
  }
  if (u.protocol !== 'http:') {
    ctx.addIssue({ code: 'custom', message: 'must be an http:// URL (the metadata service speaks HTTP)' });
    return z.NEVER;
  }
  if (u.pathname !== '/' || u.search !== '' || u.username !== '' || u.password !== '') {
    ctx.addIssue({
      code: 'custom',
      message: 'must be scheme://host[:port] with no path, query or credentials',
    });
    return z.NEVER;
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { href: `http://${u.host}`, host, port: u.port === '' ? 80 : Number(u.port), authority: u.host };
});

export const ruleSchema = z
  .object({
    /** Name shown as the event's rule (default rule[N]). */
    name: z
      .string()
      .regex(/^[A-Za-z0-9._:-]+$/, 'must be letters, digits, ".", "_", ":" or "-"')
      .optional(),
    action: z.enum(['allow', 'deny']),
    /** Sentence for the event's reason. */
    reason: z.string().min(1).max(200).optional(),
    /** Raise an alert when this rule decides (denials always alert). */
    alert: z.boolean().optional(),
    path: oneOrMany(pathPattern).optional(),
    method: oneOrMany(z.string().regex(/^[A-Za-z]+$/, 'must be an HTTP method')).optional(),
    version: oneOrMany(z.enum(IMDS_VERSIONS)).optional(),
    userAgent: oneOrMany(z.string().min(1)).optional(),
    exe: oneOrMany(absolutePath).optional(),
    user: oneOrMany(userRef).optional(),
    /**
     * true: any container; false: not in a container; strings: container id prefixes, or in a rule
     * with namespace, pod or hostNetwork the container's name in the pod spec (globs).
     */
    container: z.union([z.boolean(), oneOrMany(z.string().min(1))]).optional(),
    parentExe: oneOrMany(absolutePath).optional(),
    netns: z.enum(['host', 'other']).optional(),
    /** Kubernetes: the caller's pod namespace (globs). */
    namespace: oneOrMany(podNameGlob).optional(),
    /** Kubernetes: the caller's pod name (globs, e.g. aws-node-*). */
    pod: oneOrMany(podNameGlob).optional(),
    /** Kubernetes: true for pods in the node's network namespace, false for the others. */
    hostNetwork: z.boolean().optional(),
  })
  .strict()
  .refine(
    (r) =>
      [
        r.path,
        r.method,
        r.version,
        r.userAgent,
        r.exe,
        r.user,
        r.container,
        r.parentExe,
        r.netns,
        r.namespace,
        r.pod,
        r.hostNetwork,
      ].some((m) => m !== undefined),
    'a rule needs at least one condition (path, method, version, userAgent, exe, user, container, parentExe, netns, namespace, pod or hostNetwork)',
  )
  .superRefine((r, ctx) => {
    const podRule = r.namespace !== undefined || r.pod !== undefined || r.hostNetwork !== undefined;
    if (!podRule || typeof r.container === 'boolean' || r.container === undefined) return;
    for (const [i, c] of r.container.entries()) {
      if (!POD_NAME_GLOB.test(c))
        ctx.addIssue({
          code: 'custom',
          path: ['container', i],
          message:
            'must be a container name or a glob of one (lowercase letters, digits, "-", ".", "*", "?")',
        });
    }
  });

export const limitsSchema = z
  .object({
    /**
     * Largest request head, bytes: the request line, every header line with its CRLF, and the final
     * CRLF. Bigger gets 431.
     */
    maxHeaderBytes: z.number().int().min(1024).max(65536).default(8192),
    /** Most header lines in a request (IMDS clients send fewer than 15): more gets 431. */
    maxHeaderCount: z.number().int().min(8).max(256).default(32),
    /** Largest request body, bytes (IMDS requests have none): bigger gets 413. */
    maxBodyBytes: z.number().int().min(0).max(1_048_576).default(1024),
    /** Time allowed to receive the request head, ms (slowloris): 408 after it. */
    headersTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /** Time allowed to receive the whole request, ms. */
    requestTimeoutMs: z.number().int().min(100).max(300_000).default(30_000),
    /** Idle time before a client keep-alive connection is closed, ms. */
    keepAliveTimeoutMs: z.number().int().min(100).max(300_000).default(5_000),
    /**
     * Deadline of the whole upstream exchange (connecting, the answer's head and its whole body), and
     * the longest wait for a free upstream connection, ms: 504 (503 for the wait) after it.
     */
    upstreamTimeoutMs: z.number().int().min(10).max(120_000).default(5_000),
    /** Largest answer read from the metadata service, bytes (user-data is at most 16 KiB): bigger gets 502. */
    maxResponseBytes: z.number().int().min(16_384).max(16_777_216).default(262_144),
    /** Concurrent upstream connections. */
    maxUpstreamConnections: z.number().int().min(1).max(4096).default(64),
    /** Requests waiting for an upstream connection: beyond it, 503. */
    maxQueuedRequests: z.number().int().min(0).max(65_536).default(1024),
    /** Concurrent client connections. */
    maxClientConnections: z.number().int().min(1).max(65_536).default(4096),
  })
  .strict();

export const honeyCredentialsSchema = z
  .object({
    role: z.string().regex(/^[\w+=,.@-]{1,64}$/, 'must be an IAM role name'),
    accessKeyId: z.string().regex(/^A[SK]IA[A-Z0-9]{12,}$/, 'must look like an access key id (ASIA...)'),
    secretAccessKey: z.string().min(16),
    token: z.string().min(16).optional(),
  })
  .strict();

export const trapSchema = z
  .object({
    /** Credentials served to whoever asks in trap mode: use canary tokens that alert when used. */
    honeyCredentials: honeyCredentialsSchema.optional(),
    /** Instance identity shown by the trap (random-looking defaults derived from the host name). */
    instanceId: z
      .string()
      .regex(/^i-[0-9a-f]{8,17}$/, 'must look like i-0123456789abcdef0')
      .optional(),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be a region name such as us-east-1')
      .default('us-east-1'),
  })
  .strict();

export const attributionSchema = z
  .object({
    /** Find the calling process (needed by exe/user/container rules). */
    enabled: z.boolean().default(true),
    /** Resolve the caller for every event, not only when a rule needs it. */
    forEvents: z.boolean().default(true),
    /**
     * Hold a tokenless (IMDSv1) response until its caller is known (at most timeoutMs), so that
     * short-lived v1 callers are named before they exit. IMDSv2 requests are never held for events.
     */
    holdV1: z.boolean().default(true),
    /** Longest wait for attribution, ms; after it the caller is unknown. */
    timeoutMs: z.number().int().min(1).max(5_000).default(50),
    /**
     * How long a request's event waits for a lookup that missed timeoutMs, ms (0: not at all). The
     * decision was made without the caller; the event then names it, marked late.
     */
    eventWaitMs: z.number().int().min(0).max(30_000).default(2_000),
    /**
     * CPU the guard's own thread may spend finding a caller before handing the lookup to the
     * attribution worker, ms (0: always the worker). Needs the sock_diag addon. See attribution.md.
     */
    inlineBudgetMs: z.number().min(0).max(10).default(1),
    /**
     * Where attribution reads the node's processes and, on a Kubernetes node, what names its pods
     * (caller.pod): the proc filesystem, the kubelet's pod log directories and container log symlinks,
     * host-local IPAM state, the Amazon VPC CNI's checkpoint, the cgroup hierarchies. A missing one is
     * not an error (the pod's fields are then absent). See attribution.md.
     */
    procRoot: absolutePath.default('/proc'),
    podsRoot: absolutePath.default('/var/log/pods'),
    containerLogsRoot: absolutePath.default('/var/log/containers'),
    cniNetworksRoot: absolutePath.default('/var/lib/cni/networks'),
    vpcCniIpamFile: absolutePath.default('/var/run/aws-node/ipam.json'),
    cgroupRoot: absolutePath.default('/sys/fs/cgroup'),
  })
  .strict();

/**
 * Why the guard must not listen on `addr` in `mode`, or undefined: enforce and monitor listen on
 * loopback only unless guard.allowRemoteListen says otherwise (other hosts could then reach the
 * metadata service through it); trap may listen anywhere (a remote canary). Pure.
 */
export function remoteListenProblem(
  mode: (typeof GUARD_MODES)[number],
  addr: { host: string; port: number },
  allowRemoteListen: boolean,
): string | undefined {
  if (mode === 'trap' || allowRemoteListen || isLoopbackHost(addr.host)) return undefined;
  return `${formatListen(addr)} is not a loopback address: in ${mode} mode the guard listens on loopback only (127.0.0.1 or [::1]; containers reach it through the host's redirect). To serve other hosts on purpose, set guard.allowRemoteListen: true (flag --allow-remote-listen); their tokenless requests then need the secret header or a rule`;
}

export const guardConfigSchema = z
  .object({
    mode: z.enum(GUARD_MODES).default('enforce'),
    flavor: z.enum(FLAVORS).default('aws'),
    listen: z.array(listenAddress).min(1).prefault(['127.0.0.1:16925', '[::1]:16925']),
    /**
     * Let enforce and monitor listen on a non-loopback address (other hosts, through it, become remote
     * clients: their tokenless requests need the secret or a rule). Trap mode may listen anywhere.
     */
    allowRemoteListen: z.boolean().default(false),
    /** Default: the flavour's metadata address (169.254.169.254, or 100.100.100.200 for alibaba). */
    upstream: upstreamUrl.optional(),
    /** Name of the guard's secret header (stripped before forwarding). */
    authHeader: headerName.default(DEFAULT_AUTH_HEADER),
    /** The secret a tokenless caller may send in authHeader (never logged). */
    authSecret: z.string().min(8, 'must be at least 8 characters').max(512).optional(),
    /** User-Agent prefixes allowed to make tokenless requests (case-sensitive). */
    allowUserAgents: z.array(z.string().min(1)).default([...DEFAULT_ALLOWED_USER_AGENTS]),
    /** Allow tokenless requests carrying `Metadata-Flavor: Amazon`. */
    allowMetadataFlavorAmazon: z.boolean().default(true),
    /**
     * Alert when a tokenless read of credentials or user-data was allowed only by a User-Agent prefix
     * (allowUserAgents) or Metadata-Flavor: Amazon: headers any process can send.
     */
    alertHeaderAllowedReads: z.boolean().default(true),
    /** Executables allowed without token (exact, `/dir/*` prefix, or glob). */
    allowExe: z.array(absolutePath).default([]),
    /** Users (names or uids) allowed without token. */
    allowUser: z.array(userRef).default([]),
    /**
     * Headers that mark a proxied request (SSRF through a proxy): a request carrying one is refused
     * (rule forwarding-header). Replaces the default list; "_" matches "-".
     */
    forwardingHeaders: z.array(headerName).default([...DEFAULT_FORWARDING_HEADERS]),
    /** Extra Host header values accepted (besides the metadata addresses and the guard's own). */
    allowHosts: z.array(z.string().min(1)).default([]),
    /** Deny tokenless requests unless the caller is allowed (allowExe, allowUser, the secret). */
    requireV2: z.boolean().default(false),
    /** Token requests from containers or other network namespaces: deny unless the caller is allowed. */
    containerTokens: z.enum(['deny', 'allow']).default('deny'),
    /** Ordered rules, first match wins, after the always-refuse checks. */
    rules: z.array(ruleSchema).default([]),
    attribution: attributionSchema.prefault({}),
    limits: limitsSchema.prefault({}),
    trap: trapSchema.prefault({}),
    /**
     * What a token this guard never issued gets (the token ledger): allow, flag (forwarded with an
     * alert) or deny (401 in enforce mode, flagged in monitor mode).
     */
    unknownToken: z.enum(UNKNOWN_TOKEN_ACTIONS).default('flag'),
    /** The guard's state directory (the token ledger); unset: the ledger is in memory only. */
    stateDir: absolutePath.optional(),
    tokenLedger: tokenLedgerSchema.prefault({}),
    /** Add an `X-Imdsguard-Rule` header to refusals (off: refusals look exactly like IMDS errors). */
    revealRule: z.boolean().default(false),
  })
  .strict()
  .superRefine((g, ctx) => {
    for (const [i, h] of g.allowHosts.entries()) {
      if (/[\s/]/.test(h))
        ctx.addIssue({ code: 'custom', path: ['allowHosts', i], message: 'must be HOST or HOST:PORT' });
    }
    for (const [i, l] of g.listen.entries()) {
      if (isIP(l.host) === 0 && l.host !== 'localhost') {
        ctx.addIssue({ code: 'custom', path: ['listen', i], message: 'must be an IP address' });
      } else {
        const problem = remoteListenProblem(g.mode, l, g.allowRemoteListen);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['listen', i], message: problem });
      }
    }
  })
  .transform((g) => {
    const address = FLAVOR_SPECS[g.flavor].addresses[0] as string;
    const upstream: UpstreamAddress = g.upstream ?? {
      href: `http://${address}`,
      host: address,
      port: 80,
      authority: address,
    };
    return { ...g, upstream };
  });

export const configSchema = z
  .object({
    guard: guardConfigSchema.prefault({}),
    events: eventsConfigSchema.prefault({}),
    alerts: alertsConfigSchema.prefault({}),
    admin: adminConfigSchema.prefault({}),
  })
  .strict();

export type ImdsguardConfig = z.output<typeof configSchema>;
export type GuardConfig = ImdsguardConfig['guard'];
export type RuleConfig = GuardConfig['rules'][number];
export type LimitsConfig = GuardConfig['limits'];
export type TrapConfig = GuardConfig['trap'];
