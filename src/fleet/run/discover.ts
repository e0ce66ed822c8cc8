/**
 * `fleet discover` and `fleet roles`: scan, judge, and return the documents (the caller renders them).
 *
 *   runDiscover(options, io, env)   -> discover document, findings, optional readiness
 *   runRoles(options, io, env)      -> roles document
 */
import {
  type DiscoverDocument,
  discoverDocument,
  type RolesDocument,
  rolesDocument,
} from '../../report/fleet.js';
import type { DiscoverUsageSection, UsageRow } from '../../report/usage.js';
import type { InstanceRecord } from '../inventory/model.js';
import { type Finding, findFindings } from '../posture/findings.js';
import { groupByRole } from '../posture/roles.js';
import { summarize } from '../posture/summary.js';
import { recordSnapshot } from './history.js';
import type { RunIo } from './io.js';
import { INSTANCES_ONLY, reportScanFailures, scanFleet } from './scan.js';
import { type Env, type FleetRunOptions, type FleetSession, withSession } from './session.js';
import {
  discoverUsageSection,
  measureReadiness,
  reportUsageFailures,
  type UsageFailures,
  type UsageOptions,
  usageFailures,
} from './usage.js';

export interface DiscoverOptions {
  fleet: FleetRunOptions;
  /** Also read usage evidence and readiness (--usage). */
  usage: UsageOptions | null;
  /** The history database to record the scan in; undefined: none. */
  history: string | undefined;
}

export interface DiscoverResult {
  document: DiscoverDocument;
  findings: Finding[];
  /** With --usage: the readiness rows and the section the document gains. */
  usage: { rows: UsageRow[]; section: DiscoverUsageSection; failures: UsageFailures } | null;
  /** Partial failures were printed (the run exits 1). */
  failed: boolean;
  stats: ReturnType<FleetSession['stats']>;
}

export function runDiscover(opts: DiscoverOptions, io: RunIo, env: Env): Promise<DiscoverResult> {
  return withSession(opts.fleet, io, env, async (session) => {
    const inv = await scanFleet(session, io, { concurrency: opts.fleet.concurrency });
    const summary = summarize(inv);
    const findings = findFindings(inv);
    const document = discoverDocument(inv, summary, findings, session.stats());
    let usage: DiscoverResult['usage'] = null;
    if (opts.usage !== null) {
      const m = await measureReadiness(
        session,
        inv.instances,
        { ...opts.usage, concurrency: opts.fleet.concurrency },
        io,
      );
      usage = {
        rows: m.rows,
        section: discoverUsageSection(m),
        failures: usageFailures({ failures: [] }, m.evidence),
      };
    }
    recordSnapshot(opts.history, io, {
      time: inv.generatedAt,
      source: 'fleet discover',
      failures: inv.failures.length,
      summary,
      findings,
    });
    let failed = reportScanFailures(inv, io);
    if (usage !== null) failed = reportUsageFailures(usage.failures, io) || failed;
    return { document, findings, usage, failed, stats: session.stats() };
  });
}

export interface RolesResult {
  document: RolesDocument;
  instances: InstanceRecord[];
  failed: boolean;
  stats: ReturnType<FleetSession['stats']>;
}

export function runRoles(fleet: FleetRunOptions, io: RunIo, env: Env): Promise<RolesResult> {
  return withSession(fleet, io, env, async (session) => {
    const inv = await scanFleet(session, io, { concurrency: fleet.concurrency, include: INSTANCES_ONLY });
    const document = rolesDocument(inv, groupByRole(inv.instances), session.stats());
    const failed = reportScanFailures(inv, io);
    return { document, instances: inv.instances, failed, stats: session.stats() };
  });
}
