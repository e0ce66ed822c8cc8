import { IPT_CHAINS, isOurRule, normalizeRule, type SavedRuleset } from './iptables.js';
import { parseNftListing } from './nftables.js';
import { type Backend, DEFAULT_GUARD_PORT, IMDS_V4, IMDS_V6 } from './types.js';

/**
 * PURE part of `imdsguard doctor`: facts gathered by doctor-io.ts in, checks out. Every check has a
 * stable id, a status (ok, warn, fail), a detail and a fix hint.
 */

export const CHECK_STATUSES = ['ok', 'warn', 'fail'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

export const CHECK_IDS = [
  'redirect-v4',
  'redirect-v6',
  'containers',
  'guard-health',
  'guard-exempt',
  'imds-via-guard',
  'imds-settings',
  'capabilities',
  'attribution',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export interface Check {
  id: CheckId;
  status: CheckStatus;
  detail: string;
  fix: string;
}

/** One redirect as found in the firewall. exempt: the uid in the owner match (undefined: none). */
export interface RedirectFact {
  port: number;
  exempt: string | undefined;
}

export interface RedirectFacts {
  backend: Backend | undefined;
  /** False when the firewall could not be read (doctor is not root). */
  readable?: boolean;
  v4: RedirectFact | undefined;
  v6: RedirectFact | undefined;
  /** The container rules found with the redirect (install --containers). */
  bridges?: BridgeRules;
}

/** What the firewall does with metadata traffic arriving on container bridges. */
export interface BridgeRules {
  /** Bridges whose IPv4 metadata traffic is DNATed to the guard on 127.0.0.1, with the port. */
  dnat: Array<{ bridge: string; port: number }>;
  /** Bridges whose IPv6 metadata traffic is refused (it cannot be redirected). */
  v6Refused: string[];
  /** Bridges whose other traffic to 127.0.0.0/8 is dropped (route_localnet would expose loopback). */
  loopbackDrop: string[];
}

export interface ContainerFacts {
  /** Bridges install recorded (--containers); empty when it recorded none. */
  expected: string[];
  /** net.ipv4.conf.BRIDGE.route_localnet: true, false, or undefined when the bridge does not exist. */
  routeLocalnet: Record<string, boolean | undefined>;
}

/** Outcome of an HTTP exchange: a status code or an error reason (ECONNREFUSED, timed out...). */
export type Outcome = number | string;

export interface GuardProcess {
  pid: number;
  uid: number;
  /** Effective and ambient capability sets (bit masks from /proc/PID/status). */
  capEff: bigint;
  capAmb: bigint;
}

export interface DoctorFacts {
  port: number;
  user: { name: string; uid: number | undefined };
  ipv6Expected: boolean;
  redirects: RedirectFacts;
  health: { url: string; healthy: boolean; detail: string };
  /** undefined: no process listens on the guard port (or /proc cannot be read). */
  guard: GuardProcess | undefined;
  viaGuard: { put: Outcome; get: Outcome | undefined };
  /** IMDS as the exempt guard user sees it; skipped names why the probe did not run. */
  imds: { skipped: string | undefined; put: Outcome | undefined; tokenless: Outcome | undefined };
  /** Whether this installation finds client sockets by sock_diag (the native addon), and if not why. */
  sockDiag: { available: boolean; reason?: string };
  containers: ContainerFacts;
}

export const CAP_DAC_READ_SEARCH = 2n;
export const CAP_SYS_PTRACE = 19n;

// ---------------------------------------------------------------------------------------------------
// Reading the firewall

/** Finds our IPv4 or IPv6 redirect in parsed iptables-save output (only when OUTPUT jumps to it). */
export function iptablesRedirect(
  saved: SavedRuleset | undefined,
  family: 'ipv4' | 'ipv6',
): RedirectFact | undefined {
  const nat = saved?.get('nat');
  if (!nat) return undefined;
  const dst = family === 'ipv4' ? `${IMDS_V4}/32` : `${IMDS_V6}/128`;
  const jumps = (nat.chains.get('OUTPUT')?.rules ?? []).filter(
    (r) => isOurRule(r) && r.includes(`-j ${IPT_CHAINS.output}`) && r.includes(`-d ${dst}`),
  );
  if (jumps.length === 0) return undefined;
  for (const raw of nat.chains.get(IPT_CHAINS.output)?.rules ?? []) {
    const r = normalizeRule(raw);
    if (!r.includes(`-d ${dst}`)) continue;
    const port = / -j REDIRECT --to-ports (\d+)/.exec(r);
    if (!port) continue;
    const owner = /-m owner ! --uid-owner (\S+)/.exec(r);
    return { port: Number(port[1]), exempt: owner?.[1] };
  }
  return undefined;
}

/** Our container rules in parsed iptables-save output (IPv4 DNAT, IPv6 refusal), when jumped to. */
export function iptablesBridgeRules(v4: SavedRuleset | undefined, v6: SavedRuleset | undefined): BridgeRules {
  const out: BridgeRules = { dnat: [], v6Refused: [], loopbackDrop: [] };
  const jumped = (saved: SavedRuleset | undefined, table: string, chain: string, target: string) =>
    (saved?.get(table)?.chains.get(chain)?.rules ?? []).some(
      (r) => isOurRule(r) && r.includes(`-j ${target}`),
    );
  if (jumped(v4, 'nat', 'PREROUTING', IPT_CHAINS.prerouting)) {
    for (const raw of v4?.get('nat')?.chains.get(IPT_CHAINS.prerouting)?.rules ?? []) {
      const m = /-i (\S+) .*-j DNAT --to-destination 127\.0\.0\.1:(\d+)/.exec(normalizeRule(raw));
      if (m) out.dnat.push({ bridge: m[1] as string, port: Number(m[2]) });
    }
  }
  if (jumped(v4, 'filter', 'INPUT', IPT_CHAINS.input)) {
    for (const raw of v4?.get('filter')?.chains.get(IPT_CHAINS.input)?.rules ?? []) {
      const m = /-d 127\.0\.0\.0\/8 -i (\S+) .*-j DROP/.exec(normalizeRule(raw));
      if (m) out.loopbackDrop.push(m[1] as string);
    }
  }
  if (jumped(v6, 'filter', 'FORWARD', IPT_CHAINS.containersV6)) {
    for (const raw of v6?.get('filter')?.chains.get(IPT_CHAINS.containersV6)?.rules ?? []) {
      const m = /-i (\S+) .*-j REJECT/.exec(normalizeRule(raw));
      if (m) out.v6Refused.push(m[1] as string);
    }
  }
  return out;
}

/** Our container rules in a listing of table inet imdsguard. */
export function nftBridgeRules(listing: string | undefined): BridgeRules {
  const { dnat, v6Refused, loopbackDrop } = parseNftListing(listing ?? '');
  return { dnat, v6Refused, loopbackDrop };
}

export function nftRedirects(listing: string | undefined): { v4?: RedirectFact; v6?: RedirectFact } {
  if (listing === undefined) return {};
  const f = parseNftListing(listing);
  const out: { v4?: RedirectFact; v6?: RedirectFact } = {};
  if (f.v4Redirect) out.v4 = { port: f.v4Redirect.port, exempt: f.v4Redirect.exemptUid };
  if (f.v6Redirect) out.v6 = { port: f.v6Redirect.port, exempt: f.v6Redirect.exemptUid };
  return out;
}

/** Parses CapEff and CapAmb (hex) and the real uid from /proc/PID/status. */
export function parseProcStatus(text: string): { uid: number; capEff: bigint; capAmb: bigint } | undefined {
  const uid = /^Uid:\s+(\d+)/m.exec(text);
  const eff = /^CapEff:\s+([0-9a-f]+)/m.exec(text);
  const amb = /^CapAmb:\s+([0-9a-f]+)/m.exec(text);
  if (!uid || !eff) return undefined;
  return { uid: Number(uid[1]), capEff: BigInt(`0x${eff[1]}`), capAmb: amb ? BigInt(`0x${amb[1]}`) : 0n };
}

/**
 * Inodes of TCP sockets listening on a port, from /proc/net/tcp or /proc/net/tcp6 text.
 * Columns: sl local_address rem_address st ... inode (10th field); st 0A is LISTEN.
 */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    if (f[3] !== '0A') continue;
    if (!f[1]?.endsWith(`:${hexPort}`)) continue;
    if (f[9] && f[9] !== '0') out.push(f[9]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

function hasCap(mask: bigint, cap: bigint): boolean {
  return ((mask >> cap) & 1n) === 1n;
}

function describe(o: Outcome | undefined): string {
  if (o === undefined) return 'not tried';
  return typeof o === 'number' ? `HTTP ${o}` : o;
}

function redirectCheck(
  id: 'redirect-v4' | 'redirect-v6',
  f: RedirectFact | undefined,
  expected: boolean,
  facts: DoctorFacts,
): Check {
  const addr = id === 'redirect-v4' ? `${IMDS_V4}:80` : `[${IMDS_V6}]:80`;
  const flag = id === 'redirect-v6' ? ' --ipv6' : '';
  const fix = `sudo imdsguard install --apply --port ${facts.port}${flag}`;
  if (!f && facts.redirects.readable === false) {
    return {
      id,
      status: 'fail',
      detail: `cannot read the firewall rules for ${addr} (doctor is not root)`,
      fix: 'run doctor as root',
    };
  }
  if (!f) {
    if (!expected) {
      return {
        id,
        status: 'ok',
        detail: `no redirect for ${addr} (not requested; add --ipv6 if HttpProtocolIpv6=enabled)`,
        fix: '',
      };
    }
    return {
      id,
      status: 'fail',
      detail: `no imdsguard redirect for ${addr}: metadata traffic bypasses the guard`,
      fix,
    };
  }
  if (f.port !== facts.port) {
    return {
      id,
      status: 'fail',
      detail: `${addr} is redirected to port ${f.port}, but the guard port is ${facts.port}`,
      fix: `${fix} (or doctor --port ${f.port})`,
    };
  }
  return {
    id,
    status: 'ok',
    detail: `${addr} -> local port ${f.port} (${facts.redirects.backend ?? 'unknown backend'})`,
    fix: '',
  };
}

/** The container bridges install recorded: DNAT to the guard, route_localnet, the IPv6 refusal. */
function containersCheck(facts: DoctorFacts): Check {
  const rules = facts.redirects.bridges ?? { dnat: [], v6Refused: [], loopbackDrop: [] };
  const expected =
    facts.containers.expected.length > 0 ? facts.containers.expected : rules.dnat.map((d) => d.bridge);
  if (expected.length === 0) {
    return {
      id: 'containers',
      status: 'ok',
      detail: 'no container bridges installed (install --containers redirects them)',
      fix: '',
    };
  }
  const problems: string[] = [];
  const absent: string[] = [];
  for (const b of expected) {
    const dnat = rules.dnat.find((d) => d.bridge === b);
    if (!dnat) problems.push(`${b}: no DNAT to the guard, so containers reach IMDS around it`);
    else if (dnat.port !== facts.port)
      problems.push(`${b}: DNAT to port ${dnat.port}, but the guard port is ${facts.port}`);
    if (dnat && !rules.loopbackDrop.includes(b))
      problems.push(
        `${b}: nothing drops its other traffic to 127.0.0.0/8, which route_localnet lets through`,
      );
    const local = facts.containers.routeLocalnet[b];
    if (local === undefined) absent.push(b);
    else if (!local) problems.push(`${b}: route_localnet is 0, so the DNAT to 127.0.0.1 is dropped`);
    if (facts.ipv6Expected && !rules.v6Refused.includes(b))
      problems.push(
        `${b}: IPv6 metadata traffic is not refused, so containers reach [${IMDS_V6}] around the guard`,
      );
  }
  if (problems.length > 0) {
    return {
      id: 'containers',
      status: 'fail',
      detail: problems.join('; '),
      fix: `sudo imdsguard install --apply --containers --bridges ${expected.join(',')}${facts.ipv6Expected ? ' --ipv6' : ''}`,
    };
  }
  return {
    id: 'containers',
    status: 'ok',
    detail: `${expected.join(', ')} -> 127.0.0.1:${facts.port}${facts.ipv6Expected ? ', IPv6 refused' : ''}${
      absent.length > 0 ? ` (${absent.join(', ')} not present yet)` : ''
    }`,
    fix: '',
  };
}

export function evaluateDoctor(facts: DoctorFacts): Check[] {
  const checks: Check[] = [];
  const r = facts.redirects;
  checks.push(redirectCheck('redirect-v4', r.v4, true, facts));
  checks.push(redirectCheck('redirect-v6', r.v6, facts.ipv6Expected, facts));
  checks.push(containersCheck(facts));

  checks.push(
    facts.health.healthy
      ? { id: 'guard-health', status: 'ok', detail: facts.health.detail, fix: '' }
      : {
          id: 'guard-health',
          status: 'fail',
          detail: `guard not healthy: ${facts.health.detail}${
            r.v4 ? ' (with the redirect in place, IMDS is unreachable for every other user: fail closed)' : ''
          }`,
          fix: 'sudo systemctl start imdsguard; journalctl -u imdsguard',
        },
  );

  // The guard's own user must bypass the redirect, or its upstream requests loop back into itself.
  const uid = facts.user.uid === undefined ? undefined : String(facts.user.uid);
  const exemptions = [r.v4, r.v6].filter((x): x is RedirectFact => x !== undefined);
  if (uid === undefined) {
    checks.push({
      id: 'guard-exempt',
      status: 'fail',
      detail: `user ${facts.user.name} does not exist`,
      fix: 'sudo imdsguard install --apply (creates it), or doctor --user NAME',
    });
  } else if (exemptions.length === 0) {
    checks.push({
      id: 'guard-exempt',
      status: 'fail',
      detail: 'no redirect rule, so no exemption to check',
      fix: `sudo imdsguard install --apply --user ${facts.user.name}`,
    });
  } else if (exemptions.some((e) => e.exempt !== uid)) {
    const found = exemptions.map((e) => e.exempt ?? 'none').join(', ');
    checks.push({
      id: 'guard-exempt',
      status: 'fail',
      detail: `the rules exempt uid ${found}, but ${facts.user.name} is uid ${uid}`,
      fix: `sudo imdsguard install --apply --user ${facts.user.name}`,
    });
  } else if (facts.guard && String(facts.guard.uid) !== uid) {
    checks.push({
      id: 'guard-exempt',
      status: 'fail',
      detail: `the guard (pid ${facts.guard.pid}) runs as uid ${facts.guard.uid}, the rules exempt uid ${uid}: its upstream requests would loop`,
      fix: `run the guard as ${facts.user.name} (User= in the unit)`,
    });
  } else {
    checks.push({
      id: 'guard-exempt',
      status: 'ok',
      detail: `owner match exempts ${facts.user.name} (uid ${uid})${facts.guard ? `, the guard's uid` : ''}`,
      fix: '',
    });
  }

  const v = facts.viaGuard;
  if (v.put === 200 && v.get === 200) {
    checks.push({
      id: 'imds-via-guard',
      status: 'ok',
      detail: `token PUT and GET through 127.0.0.1:${facts.port} answered 200`,
      fix: '',
    });
  } else {
    checks.push({
      id: 'imds-via-guard',
      status: 'fail',
      detail: `through the guard: token PUT ${describe(v.put)}, GET ${describe(v.get)}`,
      fix:
        typeof v.put === 'string'
          ? 'start the guard; check it listens on the port the rules redirect to'
          : 'check the guard log (a refusal names its rule) and that its user reaches IMDS (guard-exempt)',
    });
  }

  const m = facts.imds;
  if (m.skipped !== undefined) {
    checks.push({
      id: 'imds-settings',
      status: 'warn',
      detail: `unknown: ${m.skipped}`,
      fix: 'run doctor as root',
    });
  } else if (typeof m.put === 'string' && (m.tokenless === undefined || typeof m.tokenless === 'string')) {
    checks.push({
      id: 'imds-settings',
      status: 'fail',
      detail: `IMDS unreachable from ${facts.user.name}: ${describe(m.put)}`,
      fix: 'is this an EC2 instance? check HttpEndpoint and the exemption (guard-exempt)',
    });
  } else if (m.put === 403 || m.tokenless === 403) {
    checks.push({
      id: 'imds-settings',
      status: 'warn',
      detail: 'IMDS answers 403: the endpoint is disabled (HttpEndpoint=disabled)',
      fix: 'nothing to guard while it stays disabled',
    });
  } else if (m.tokenless === 200) {
    checks.push({
      id: 'imds-settings',
      status: 'warn',
      detail: `IMDSv1 is answered (HttpTokens=optional); token PUT ${describe(m.put)}`,
      fix: 'the guard refuses unknown v1 callers; enforce IMDSv2 with imdsguard fleet harden once no v1 caller is left',
    });
  } else if (m.tokenless === 401 && m.put === 200) {
    checks.push({
      id: 'imds-settings',
      status: 'ok',
      detail: 'tokens required (HttpTokens=required): IMDSv1 refused with 401, token PUT 200',
      fix: '',
    });
  } else if (m.tokenless === undefined && m.put === 200) {
    checks.push({
      id: 'imds-settings',
      status: 'ok',
      detail: 'token PUT 200 (IMDSv1 not probed: --no-v1-probe)',
      fix: '',
    });
  } else {
    checks.push({
      id: 'imds-settings',
      status: 'warn',
      detail: `unexpected answers: token PUT ${describe(m.put)}, tokenless GET ${describe(m.tokenless)}`,
      fix: 'see docs/install.md (doctor)',
    });
  }

  const g = facts.guard;
  if (!g) {
    checks.push({
      id: 'capabilities',
      status: 'warn',
      detail: `unknown: no process found listening on port ${facts.port}`,
      fix: 'start the guard, then re-run doctor as root',
    });
  } else {
    const missing = [
      ['CAP_DAC_READ_SEARCH', CAP_DAC_READ_SEARCH],
      ['CAP_SYS_PTRACE', CAP_SYS_PTRACE],
    ]
      .filter(([, bit]) => !hasCap(g.capEff, bit as bigint))
      .map(([name]) => name as string);
    if (missing.length > 0) {
      checks.push({
        id: 'capabilities',
        status: 'warn',
        detail: `guard pid ${g.pid} lacks ${missing.join(' and ')}: callers of other users cannot be attributed`,
        fix: 'AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE in the unit (imdsguard install --systemd)',
      });
    } else {
      const extra = g.capEff & ~((1n << CAP_DAC_READ_SEARCH) | (1n << CAP_SYS_PTRACE));
      checks.push({
        id: 'capabilities',
        status: 'ok',
        detail: `guard pid ${g.pid} (uid ${g.uid}) has CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE${
          extra !== 0n ? ` and more (CapEff ${g.capEff.toString(16)}): more privilege than it needs` : ''
        }`,
        fix: extra !== 0n ? 'run it as a non-root user with only the ambient capabilities of the unit' : '',
      });
    }
  }
  checks.push(
    facts.sockDiag.available
      ? {
          id: 'attribution',
          status: 'ok',
          detail: 'the sock_diag addon is built: client sockets are found by exact lookup',
          fix: '',
        }
      : {
          id: 'attribution',
          status: 'warn',
          detail: `client sockets are found by reading /proc/net/tcp, slower on busy hosts: ${facts.sockDiag.reason ?? 'sock_diag unavailable'}`,
          fix: 'install g++, make and python3, then rebuild the addon: npm run build:native (see docs/attribution.md)',
        },
  );
  return checks;
}

export function doctorExitCode(checks: readonly Check[]): 0 | 1 {
  return checks.every((c) => c.status === 'ok') ? 0 : 1;
}

/** The checks as an aligned text table. */
export function renderChecks(checks: readonly Check[]): string {
  const rows = checks.map((c) => [c.id, c.status.toUpperCase(), c.detail]);
  const w0 = Math.max(5, ...rows.map((r) => (r[0] as string).length));
  const w1 = 6;
  const lines = [`${'CHECK'.padEnd(w0)}  ${'STATUS'.padEnd(w1)}  DETAIL`];
  checks.forEach((c, i) => {
    const r = rows[i] as string[];
    lines.push(`${(r[0] as string).padEnd(w0)}  ${(r[1] as string).padEnd(w1)}  ${r[2]}`);
    if (c.status !== 'ok' && c.fix) lines.push(`${''.padEnd(w0)}  ${''.padEnd(w1)}  fix: ${c.fix}`);
  });
  const bad = checks.filter((c) => c.status !== 'ok').length;
  lines.push('', bad === 0 ? 'all checks passed' : `${bad} problem(s) found`);
  return `${lines.join('\n')}\n`;
}

export { DEFAULT_GUARD_PORT };
