/**
 * Scanning the fleet: the inventory of a session's accounts and regions with a progress line, stopped
 * by the run's signal, and the two ways a scan can fail as a whole.
 *
 *   scanFleet(session, io, include)        -> Inventory (throws when every scan failed on credentials)
 *   scanForChange(session, io, include)    -> { inventory, failed } (throws when no scan succeeded)
 */
import { ImdsguardError } from '../../errors.js';
import { createProgress } from '../../io/progress.js';
import { AUTH_HINT } from '../aws/errors.js';
import { type CollectOptions, collectInventory } from '../inventory/collect.js';
import type { Inventory, ScanFailure, ScanStage } from '../inventory/model.js';
import { printFailures, type RunIo, unlessStopped } from './io.js';
import type { FleetRunOptions, FleetSession } from './session.js';

export type ScanInclude = CollectOptions['include'];

/** Instances only: what fleet roles and fleet usage need. */
export const INSTANCES_ONLY: ScanInclude = {
  defaults: false,
  templates: false,
  autoScaling: false,
  images: false,
};

/** What an instance change needs: the instances (their roles are not read). */
export const INSTANCE_CHANGE: ScanInclude = { ...INSTANCES_ONLY, roles: false };

/** What to scan, and (for a streamed report) where each page of instances and each completed scan go. */
export type ScanOptions = Pick<FleetRunOptions, 'concurrency'> & {
  include?: ScanInclude;
  onInstances?: CollectOptions['onInstances'];
  onScan?: CollectOptions['onScan'];
};

/**
 * collectInventory over the session's targets with a progress line on io.output, cleared when the
 * scan settles. Rejects with IMDSGUARD_E_INTERRUPTED when io.signal aborts.
 */
export function collectWithProgress(session: FleetSession, io: RunIo, opts: ScanOptions): Promise<Inventory> {
  const progress = createProgress(io.output);
  const scan = collectInventory(session.factory, session.targets, {
    concurrency: opts.concurrency,
    include: opts.include,
    onProgress: (p) => progress.update(p),
    onInstances: opts.onInstances,
    onScan: opts.onScan,
  });
  return unlessStopped(scan, io.signal, 'the scan finished').finally(() => progress.done());
}

/** When every scan failed on credentials, one clear error beats a report of N identical failures. */
export function throwIfAllAuth(inv: Pick<Inventory, 'scans' | 'failures'>): void {
  if (inv.scans.length === 0 || inv.scans.some((s) => s.status !== 'failed')) return;
  const first = inv.failures[0];
  if (first && inv.failures.every((f) => f.code === 'IMDSGUARD_E_AWS_AUTH')) {
    throw new ImdsguardError('IMDSGUARD_E_AWS_AUTH', first.message, { hint: AUTH_HINT });
  }
}

/** A scan for a report: partial failures are part of the result; all-credentials failure throws. */
export async function scanFleet(session: FleetSession, io: RunIo, opts: ScanOptions): Promise<Inventory> {
  const inv = await collectWithProgress(session, io, opts);
  throwIfAllAuth(inv);
  return inv;
}

/** Prints a report's partial failures; true when there were any (the run exits 1). */
export function reportScanFailures(inv: Pick<Inventory, 'failures'>, io: RunIo): boolean {
  printFailures(io, inv.failures, 'every other account and region was scanned');
  return inv.failures.length > 0;
}

export interface ChangeScan {
  inventory: Inventory;
  /** Some account or region could not be read (printed; the run exits 1). */
  failed: boolean;
  /** "ACCOUNT/REGION" where what the change needs could not be read: nothing is changed there. */
  unread: ReadonlySet<string>;
}

/**
 * The inventory a change needs (`needs`: the scan stages it plans from; a failed scan is unread
 * whatever it needs). Throws when no account and region could be read. Otherwise prints the failures
 * in two groups, each saying what the change does there: nothing where something it needs failed,
 * everything where only what it does not use failed.
 */
export async function scanForChange(
  session: FleetSession,
  io: RunIo,
  opts: Pick<FleetRunOptions, 'concurrency'> & { include?: ScanInclude; needs: readonly ScanStage[] },
): Promise<ChangeScan> {
  const inv = await collectWithProgress(session, io, opts);
  if (inv.failures.length === 0) return { inventory: inv, failed: false, unread: new Set() };
  if (inv.scans.length > 0 && inv.scans.every((s) => s.status === 'failed')) {
    const f = inv.failures[0];
    throw new ImdsguardError(
      (f?.code as 'IMDSGUARD_E_AWS') ?? 'IMDSGUARD_E_AWS',
      `no account and region could be read: ${f?.message ?? 'unknown error'}`,
      { hint: f?.hint ?? undefined },
    );
  }
  const unread = new Set<string>();
  for (const s of inv.scans) if (s.status === 'failed') unread.add(`${s.accountId}/${s.region}`);
  for (const f of inv.failures) {
    if (f.accountId !== null && f.region !== null && opts.needs.includes(f.stage)) {
      unread.add(`${f.accountId}/${f.region}`);
    }
  }
  const stops = (f: ScanFailure) =>
    f.stage === 'assume-role' || (f.region !== null && unread.has(`${f.accountId}/${f.region}`));
  const quiet = { noun: 'scan failure', listedInOutput: false };
  printFailures(io, inv.failures.filter(stops), 'nothing is changed in these accounts and regions', quiet);
  printFailures(
    io,
    inv.failures.filter((f) => !stops(f)),
    'this change does not use what failed, so it goes on there',
    quiet,
  );
  return { inventory: inv, failed: true, unread };
}
