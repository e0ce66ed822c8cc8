import { containersCheck } from './doctor-containers.js';
import {
  CAP_DAC_READ_SEARCH,
  CAP_SYS_PTRACE,
  type DoctorFacts,
  type Outcome,
  type RedirectFact,
} from './doctor-facts.js';
import { IMDS_V4, IMDS_V6 } from './types.js';

/**
 * PURE part of `imdsguard doctor`: facts (doctor-facts.ts, gathered by doctor-io.ts) in, checks out. Every check has a
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
