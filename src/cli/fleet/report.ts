/**
 * `imdsguard fleet report`: one self-contained HTML page (or the same numbers as JSON) of the fleet's
 * IMDS posture: overview, enforcement by account and region, readiness, regression sources, the
 * trend from the history, and every finding.
 *
 * The data comes from a live scan (the common fleet options; --usage adds CloudWatch readiness) or
 * from a saved `fleet discover --format json` (--input FILE; --usage-input FILE adds a saved
 * `fleet usage --format json`). A live scan is recorded in the history like `fleet discover`.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command, Option } from 'commander';
import { ImdsguardError } from '../../errors.js';
import { AUTH_HINT } from '../../fleet/aws/errors.js';
import { readHistory } from '../../fleet/history/store.js';
import { INVENTORY_SCHEMA_VERSION, type Inventory } from '../../fleet/inventory/model.js';
import { findFindings } from '../../fleet/posture/findings.js';
import { assessFleet, countReadiness, READINESS, type Readiness } from '../../fleet/posture/readiness.js';
import { summarize } from '../../fleet/posture/summary.js';
import { usageWindow } from '../../fleet/usage/window.js';
import { renderFleetHtml } from '../../report/html/fleet.js';
import { buildFleetReport, type FleetReportDocument } from '../../report/html/fleet-data.js';
import { renderJson } from '../../report/json.js';
import { writeOutput } from '../../report/output.js';
import type { FleetSubcommand } from '../commands/fleet.js';
import {
  addFleetOptions,
  collectWithProgress,
  finishFleetRun,
  openFleetSession,
  parseFleetOptions,
} from '../fleet-options.js';
import { parseChoice } from '../options.js';
import { addHistoryOptions, historyPath, recordSnapshot } from './history.js';
import { addUsageOptions, measureReadiness, parseUsageOptions } from './usage.js';

export const REPORT_FORMATS = ['html', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

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
  rows: Array<{ readiness: Readiness }>;
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
  const rows = (d['instances'] as Array<{ readiness?: unknown }>).map((r, k) => {
    if (typeof r?.readiness !== 'string' || !known.has(r.readiness)) throw bad(`instances[${k}].readiness`);
    return { readiness: r.readiness as Readiness };
  });
  const w = d['window'] as { days?: unknown; start?: unknown; end?: unknown } | undefined;
  const window =
    w && typeof w.days === 'number' && typeof w.start === 'string' && typeof w.end === 'string'
      ? { days: w.days, start: w.start, end: w.end }
      : null;
  return { rows, window };
}

function throwIfAllAuth(inv: Inventory): void {
  if (inv.scans.length === 0 || inv.scans.some((s) => s.status !== 'failed')) return;
  const first = inv.failures[0];
  if (first && inv.failures.every((f) => f.code === 'IMDSGUARD_E_AWS_AUTH')) {
    throw new ImdsguardError('IMDSGUARD_E_AWS_AUTH', first.message, { hint: AUTH_HINT });
  }
}

/** Narrows the shared --format option to html|json (the report's formats). */
function reportFormatOption(cmd: Command): void {
  const opt = cmd.options.find((o: Option) => o.long === '--format');
  if (!opt) return;
  opt.description = `output format: ${REPORT_FORMATS.join('|')} (default html)`;
  opt.argParser((v: string) => parseChoice(v, REPORT_FORMATS, '--format'));
}

export const reportSubcommand: FleetSubcommand = {
  name: 'report',
  summary:
    'One self-contained HTML report (or JSON) of IMDSv2 enforcement, readiness, regression sources, findings and the trend.',
  examples: [
    [
      'imdsguard fleet report --all-regions --output imds-report.html',
      'scan every enabled region, record the scan in the history, write the HTML report',
    ],
    [
      'imdsguard fleet report --org --role Audit --usage --days 30 --output report.html',
      'the whole organization, with readiness from 30 days of CloudWatch evidence',
    ],
    [
      'imdsguard fleet report --input fleet.json --format json',
      'the report of a saved `fleet discover --format json`, as JSON (the same numbers as the HTML)',
    ],
  ],
  configure(cmd, ctx) {
    addFleetOptions(cmd);
    reportFormatOption(cmd);
    addHistoryOptions(cmd);
    addUsageOptions(cmd, false);
    cmd
      .option('--input <file>', 'a saved `fleet discover --format json` to report on, instead of scanning')
      .option(
        '--usage',
        'read CloudWatch evidence of IMDSv1 calls for the readiness breakdown (live scan only)',
      )
      .option('--usage-input <file>', 'a saved `fleet usage --format json` for the readiness breakdown');
    cmd.action(async (raw: Record<string, unknown>) => {
      const format = (raw['format'] as ReportFormat | undefined) ?? 'html';
      const opts = parseFleetOptions({ ...raw, format: undefined });
      const u = parseUsageOptions(raw);
      const input = typeof raw['input'] === 'string' ? resolve(ctx.cwd, raw['input']) : undefined;
      const usageInput =
        typeof raw['usageInput'] === 'string' ? resolve(ctx.cwd, raw['usageInput']) : undefined;
      if (input !== undefined && raw['usage'] === true) {
        throw new ImdsguardError(
          'IMDSGUARD_E_USAGE',
          '--usage reads CloudWatch during a live scan; it cannot be used with --input',
          {
            hint: 'save a `fleet usage --format json` and pass it with --usage-input',
          },
        );
      }
      if (usageInput !== undefined && raw['usage'] === true) {
        throw new ImdsguardError('IMDSGUARD_E_USAGE', '--usage and --usage-input exclude each other');
      }
      const history = historyPath(raw, ctx);
      let inv: Inventory;
      let readiness: Array<{ readiness: Readiness }> | undefined;
      let window: { days: number; start: string; end: string } | null = null;
      if (input !== undefined) {
        inv = inventoryFromDiscover(await readJsonFile(input, '--input'), input);
      } else {
        const session = await openFleetSession(opts, ctx);
        try {
          inv = await collectWithProgress(session, ctx, { concurrency: opts.concurrency });
          throwIfAllAuth(inv);
          if (raw['usage'] === true) {
            const m = await measureReadiness(
              session,
              inv.instances,
              {
                days: u.days,
                mode: u.metrics,
                maxDatapoints: u.maxDatapoints,
                concurrency: opts.concurrency,
              },
              ctx,
            );
            readiness = m.rows;
            window = { days: m.window.days, start: m.window.start, end: m.window.end };
            for (const f of m.evidence.failures) {
              ctx.stderr.write(
                `imdsguard: CloudWatch ${f.accountId} ${f.region}: ${f.message} [${f.code}]\n`,
              );
            }
            if (m.evidence.failures.length > 0) ctx.exitCode = 1;
          }
          finishFleetRun(session, opts, ctx);
        } finally {
          session.close();
        }
      }
      if (usageInput !== undefined) {
        const ui = readinessFromUsage(await readJsonFile(usageInput, '--usage-input'), usageInput);
        readiness = ui.rows;
        window = ui.window;
      }
      const summary = summarize(inv);
      const findings = findFindings(inv);
      const measured = readiness !== undefined;
      // Without evidence, H8's rules give: enforced when IMDSv1 is off, else unknown.
      const rows =
        readiness ??
        assessFleet(inv.instances, new Map(), usageWindow(Date.parse(inv.generatedAt) || Date.now()));
      if (input === undefined && history !== undefined) {
        recordSnapshot(raw, ctx, {
          time: inv.generatedAt,
          source: 'fleet report',
          failures: inv.failures.length,
          summary,
          findings,
          readiness: measured ? countReadiness(rows) : null,
        });
      }
      const doc: FleetReportDocument = buildFleetReport({
        inventory: inv,
        summary,
        findings,
        readiness: rows,
        readinessMeasured: measured,
        usageWindow: window,
        history: history !== undefined ? readHistory(history) : [],
        source: input === undefined ? 'discovery' : 'input',
        now: new Date().toISOString(),
      });
      const text = format === 'json' ? renderJson(doc) : renderFleetHtml(doc);
      await writeOutput(ctx.stdout, text, opts.output, ctx.cwd);
      if (inv.failures.length > 0) {
        ctx.stderr.write(
          `imdsguard: ${inv.failures.length} partial scan failure(s); the report lists them and counts the rest\n`,
        );
        ctx.exitCode = 1;
      }
    });
  },
};
