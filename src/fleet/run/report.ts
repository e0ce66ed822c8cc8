/**
 * `fleet report`: the numbers of the fleet report (HTML or JSON) from a live scan (with optional
 * CloudWatch readiness) or from a saved `fleet discover --format json` (and `fleet usage --format json`).
 * A live scan is recorded in the history like `fleet discover`.
 *
 *   runReport(options, io, env)   -> FleetReportDocument
 */
import { readFile } from 'node:fs/promises';
import { ImdsguardError } from '../../errors.js';
import type { RunStats } from '../../report/fleet.js';
import { buildFleetReport, type FleetReportDocument } from '../../report/html/fleet-data.js';
import { readHistory } from '../history/store.js';
import { INVENTORY_SCHEMA_VERSION, type Inventory } from '../inventory/model.js';
import { findFindings } from '../posture/findings.js';
import { type KeyedReadiness, READINESS, type Readiness } from '../posture/readiness.js';
import { summarize } from '../posture/summary.js';
import { type HostEvidenceReport, hostEvidenceReport } from '../usage/host-join.js';
import { recordSnapshot } from './history.js';
import type { RunIo } from './io.js';
import { scanFleet } from './scan.js';
import { type Env, type FleetRunOptions, withSession } from './session.js';
import { logsFailures, logsSection, measureReadiness, type UsageOptions } from './usage.js';

/** Largest --input / --usage-input file read, bytes. */
export const MAX_INPUT_BYTES = 512 * 1024 * 1024;

async function readJsonFile(path: string, option: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ImdsguardError(
      'IMDSGUARD_E_CONFIG_READ',
      `${option}: cannot read ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (text.length > MAX_INPUT_BYTES) {
    throw new ImdsguardError(
      'IMDSGUARD_E_CONFIG_READ',
      `${option}: ${path} is larger than ${MAX_INPUT_BYTES} bytes`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ImdsguardError(
      'IMDSGUARD_E_CONFIG_READ',
      `${option}: ${path} is not JSON: ${(err as Error).message}`,
      {
        cause: err,
        hint: 'save it with: imdsguard fleet discover --format json --output FILE',
      },
    );
  }
}

/** The inventory of a saved `fleet discover --format json` document. Throws IMDSGUARD_E_CONFIG_READ. */
export function inventoryFromDiscover(doc: unknown, path: string): Inventory {
  const d = doc as Partial<Record<string, unknown>> | null;
  const bad = (why: string) =>
    new ImdsguardError(
      'IMDSGUARD_E_CONFIG_READ',
      `--input: ${path} is not a fleet discover JSON document: ${why}`,
      {
        hint: 'save one with: imdsguard fleet discover --format json --output FILE',
      },
    );
  if (typeof d !== 'object' || d === null) throw bad('not an object');
  if (d['kind'] !== 'imdsguard.fleet.discover') throw bad(`kind is ${JSON.stringify(d['kind'])}`);
  if (d['schemaVersion'] !== INVENTORY_SCHEMA_VERSION)
    throw bad(`schemaVersion ${String(d['schemaVersion'])}`);
  for (const k of ['regions', 'accounts', 'scans', 'instances', 'failures'] as const) {
    if (!Array.isArray(d[k])) throw bad(`"${k}" is not an array`);
  }
  if (typeof d['generatedAt'] !== 'string' || !Number.isFinite(Date.parse(d['generatedAt']))) {
    throw bad('"generatedAt" is not a time');
  }
  return {
    schemaVersion: INVENTORY_SCHEMA_VERSION,
    generatedAt: d['generatedAt'],
    regions: d['regions'] as Inventory['regions'],
    accounts: d['accounts'] as Inventory['accounts'],
    scans: d['scans'] as Inventory['scans'],
    instances: d['instances'] as Inventory['instances'],
    failures: d['failures'] as Inventory['failures'],
  };
}

interface UsageInput {
  rows: KeyedReadiness[];
  window: { days: number; start: string; end: string } | null;
}

/** Readiness rows of a saved `fleet usage --format json` document. Throws IMDSGUARD_E_CONFIG_READ. */
export function readinessFromUsage(doc: unknown, path: string): UsageInput {
  const d = doc as Partial<Record<string, unknown>> | null;
  const bad = (why: string) =>
    new ImdsguardError(
      'IMDSGUARD_E_CONFIG_READ',
      `--usage-input: ${path} is not a fleet usage JSON document: ${why}`,
      {
        hint: 'save one with: imdsguard fleet usage --format json --output FILE',
      },
    );
  if (typeof d !== 'object' || d === null) throw bad('not an object');
  if (d['kind'] !== 'imdsguard.fleet.usage') throw bad(`kind is ${JSON.stringify(d['kind'])}`);
  if (!Array.isArray(d['instances'])) throw bad('"instances" is not an array');
  const known = new Set<string>(READINESS);
  const rows = (d['instances'] as Array<Record<string, unknown> | null>).map((r, k) => {
    if (typeof r?.['readiness'] !== 'string' || !known.has(r['readiness'])) {
      throw bad(`instances[${k}].readiness`);
    }
    for (const f of ['accountId', 'region', 'instanceId'] as const) {
      if (typeof r[f] !== 'string') throw bad(`instances[${k}].${f}`);
    }
    return {
      accountId: r['accountId'] as string,
      region: r['region'] as string,
      instanceId: r['instanceId'] as string,
      readiness: r['readiness'] as Readiness,
    };
  });
  const w = d['window'] as { days?: unknown; start?: unknown; end?: unknown } | undefined;
  const window =
    w && typeof w.days === 'number' && typeof w.start === 'string' && typeof w.end === 'string'
      ? { days: w.days, start: w.start, end: w.end }
      : null;
  return { rows, window };
}

export interface ReportOptions {
  fleet: FleetRunOptions;
  /** A saved `fleet discover --format json` (absolute path) instead of a live scan. */
  input: string | undefined;
  /** A saved `fleet usage --format json` (absolute path) for the readiness breakdown. */
  usageInput: string | undefined;
  /** Read CloudWatch evidence during the live scan (--usage); null: no. */
  usage: UsageOptions | null;
  /** The history database (trend; a live scan is recorded there); undefined: none. */
  history: string | undefined;
}

export interface ReportResult {
  document: FleetReportDocument;
  /** Scan or CloudWatch failures were printed (the run exits 1). */
  failed: boolean;
  /** The live scan's duration and API calls; null for --input. */
  stats: RunStats | null;
}

interface Scanned {
  inventory: Inventory;
  hostEvidence?: HostEvidenceReport | null;
  readiness: KeyedReadiness[] | undefined;
  window: { days: number; start: string; end: string } | null;
  failed: boolean;
  stats: RunStats | null;
}

/** The live scan, with CloudWatch readiness when asked. */
function scanForReport(opts: ReportOptions, io: RunIo, env: Env): Promise<Scanned> {
  return withSession(opts.fleet, io, env, async (session) => {
    const inventory = await scanFleet(session, io, { concurrency: opts.fleet.concurrency });
    const out: Scanned = { inventory, readiness: undefined, window: null, failed: false, stats: null };
    if (opts.usage !== null) {
      const m = await measureReadiness(
        session,
        inventory.instances,
        { ...opts.usage, concurrency: opts.fleet.concurrency },
        io,
      );
      out.readiness = m.rows;
      out.window = { days: m.window.days, start: m.window.start, end: m.window.end };
      const failures = [...m.evidence.failures, ...logsFailures(m)];
      for (const f of failures) {
        io.output.write(`imdsguard: CloudWatch ${f.accountId} ${f.region}: ${f.message} [${f.code}]\n`);
      }
      if (failures.length > 0) out.failed = true;
      const sources = opts.usage.hostEvidence ?? [];
      if (sources.length > 0) {
        const logs = m.logs;
        out.hostEvidence = hostEvidenceReport(
          m.rows,
          logs ? logsSection(logs, m.rows).source : sources.join(' '),
          {
            used: logs !== null,
            failureFor: (r) => logs?.failureFor(r)?.error?.message,
            bytesScanned: logs ? logs.queries.reduce((n, q) => n + q.bytesScanned, 0) : 0,
          },
        );
      }
    }
    out.stats = session.stats();
    return out;
  });
}

export async function runReport(opts: ReportOptions, io: RunIo, env: Env): Promise<ReportResult> {
  const scanned: Scanned =
    opts.input !== undefined
      ? {
          inventory: inventoryFromDiscover(await readJsonFile(opts.input, '--input'), opts.input),
          readiness: undefined,
          window: null,
          failed: false,
          stats: null,
        }
      : await scanForReport(opts, io, env);
  if (opts.usageInput !== undefined) {
    const ui = readinessFromUsage(await readJsonFile(opts.usageInput, '--usage-input'), opts.usageInput);
    scanned.readiness = ui.rows;
    scanned.window = ui.window;
  }
  const inv = scanned.inventory;
  const summary = summarize(inv);
  const findings = findFindings(inv);
  const document = buildFleetReport({
    inventory: inv,
    summary,
    findings,
    readiness: scanned.readiness ?? null,
    usageWindow: scanned.window,
    hostEvidence: scanned.hostEvidence ?? null,
    history: opts.history !== undefined ? readHistory(opts.history) : [],
    source: opts.input === undefined ? 'discovery' : 'input',
    now: new Date().toISOString(),
  });
  if (opts.input === undefined) {
    recordSnapshot(opts.history, io, {
      time: inv.generatedAt,
      source: 'fleet report',
      failures: inv.failures.length,
      summary,
      findings,
      readiness: document.readiness.measured ? document.readiness.counts : null,
    });
  }
  let failed = scanned.failed;
  if (inv.failures.length > 0) {
    io.output.write(
      `imdsguard: ${inv.failures.length} partial scan failure(s); the report lists them and counts the rest\n`,
    );
    failed = true;
  }
  return { document, failed, stats: scanned.stats };
}
