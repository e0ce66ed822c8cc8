/**
 * `fleet discover --format ndjson|csv`: the same scan as runDiscover, written as it goes. The fleet is
 * never held whole: each page of instances is judged, counted and handed to the stream before the
 * next page is read, then dropped (memory follows the pages in flight, not the fleet). Counts of a
 * scan are kept apart until it completes: a scan that fails part-way is not counted (its instances
 * already written stay in the output, and its scan and failure records say it failed).
 *
 *   runDiscoverStream(options, stream, io, env) -> finding counts, failures, stats
 *
 * Nothing is written until one scan has succeeded: when every scan fails on credentials the run
 * throws one clear error (as runDiscover does) and the output stays empty. A run stopped (Ctrl-C)
 * after writing leaves the scans written so far and no `end` record, and says so.
 */
import { ImdsguardError } from '../../errors.js';
import type { DiscoverScanPart, DiscoverStream } from '../../report/discover-stream.js';
import type { RunStats } from '../../report/fleet.js';
import type { ScanPart } from '../inventory/collect.js';
import type { InstanceRecord } from '../inventory/model.js';
import {
  countBySeverity,
  countImageUsers,
  findInstanceFindings,
  findScanFindings,
  type Severity,
} from '../posture/findings.js';
import { PostureTally } from '../posture/summary.js';
import { recordSnapshot } from './history.js';
import { type RunIo, stopReason } from './io.js';
import { reportScanFailures, scanFleet } from './scan.js';
import { type Env, type FleetRunOptions, withSession } from './session.js';

export interface DiscoverStreamOptions {
  fleet: FleetRunOptions;
  /** The history database to record the scan in; undefined: none. */
  history: string | undefined;
}

export interface DiscoverStreamResult {
  findingCounts: Record<Severity, number>;
  /** Instances written. */
  instances: number;
  /** Partial failures were printed (the run exits 1). */
  failed: boolean;
  stats: RunStats;
}

function interrupted(signal: AbortSignal): ImdsguardError {
  return new ImdsguardError(
    'IMDSGUARD_E_INTERRUPTED',
    `stopped by ${stopReason(signal)} before the scan finished; the output holds what was scanned so far and no end record`,
  );
}

export function runDiscoverStream(
  opts: DiscoverStreamOptions,
  stream: DiscoverStream,
  io: RunIo,
  env: Env,
): Promise<DiscoverStreamResult> {
  return withSession(opts.fleet, io, env, async (session) => {
    const generatedAt = new Date(session.startedAt).toISOString();
    const tally = new PostureTally();
    const findingCounts: Record<Severity, number> = { high: 0, medium: 0, low: 0, info: 0 };
    const addCounts = (c: Record<Severity, number>) => {
      for (const s of Object.keys(c) as Severity[]) findingCounts[s] += c[s];
    };
    let instances = 0;
    // Per scan in flight: its counts, its instances' finding counts, and live instances per AMI.
    const staged = new Map<
      string,
      {
        posture: ReturnType<PostureTally['stage']>;
        findings: Record<Severity, number>;
        imageUsers: Map<string, number>;
      }
    >();
    const stageOf = (at: { accountId: string; region: string }) => {
      const k = `${at.accountId}/${at.region}`;
      let st = staged.get(k);
      if (!st) {
        st = {
          posture: tally.stage(at.accountId, at.region),
          findings: { high: 0, medium: 0, low: 0, info: 0 },
          imageUsers: new Map(),
        };
        staged.set(k, st);
      }
      return st;
    };
    let started = false;
    // Failed scans wait for the first record to write, so an all-failed run writes nothing.
    const held: DiscoverScanPart[] = [];
    const start = async () => {
      if (started) return;
      started = true;
      await stream.start({ generatedAt, regions: session.targets.regions });
      for (const p of held.splice(0)) await stream.scan(p);
    };
    const onInstances = async (page: InstanceRecord[], at: { accountId: string; region: string }) => {
      if (io.signal.aborted) throw interrupted(io.signal);
      const st = stageOf(at);
      for (const i of page) st.posture.add(i);
      countImageUsers(page, st.imageUsers);
      const findings = findInstanceFindings(page);
      for (const f of findings) st.findings[f.severity] += 1;
      instances += page.length;
      await start();
      await stream.instances({ instances: page, findings });
    };
    const onScan = async ({ scan }: ScanPart) => {
      if (io.signal.aborted) throw interrupted(io.signal);
      const st = stageOf(scan);
      staged.delete(`${scan.accountId}/${scan.region}`);
      tally.addScan(scan);
      const findings = findScanFindings(scan, st.imageUsers);
      if (scan.status !== 'failed') {
        st.posture.commit();
        addCounts(st.findings);
        addCounts(countBySeverity(findings));
      }
      const part = { scan, findings };
      if (!started && scan.status === 'failed') held.push(part);
      else {
        await start();
        await stream.scan(part);
      }
    };
    let inv: Awaited<ReturnType<typeof scanFleet>>;
    try {
      inv = await scanFleet(session, io, { concurrency: opts.fleet.concurrency, onInstances, onScan });
    } catch (err) {
      if (started && err instanceof ImdsguardError && err.code === 'IMDSGUARD_E_INTERRUPTED') {
        throw interrupted(io.signal);
      }
      throw err;
    }
    await start();
    const summary = tally.summary();
    await stream.end({
      accounts: inv.accounts,
      summary,
      findingCounts,
      failures: inv.failures,
      stats: session.stats(),
    });
    recordSnapshot(opts.history, io, {
      time: inv.generatedAt,
      source: 'fleet discover',
      failures: inv.failures.length,
      summary,
      findings: findingCounts,
    });
    const failed = reportScanFailures(inv, io);
    return { findingCounts, instances, failed, stats: session.stats() };
  });
}
