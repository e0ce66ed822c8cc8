/**
 * `fleet discover` as NDJSON or CSV, record by record, so that a fleet of any size is written as each
 * account and region scan completes and never held whole (docs/fleet.md, "Output formats").
 *
 *   NDJSON  meta; then, as the scans go, each page of instances (instance records, then their
 *           findings) and, when an account and region scan completes, its scan record and the
 *           findings of its templates, groups, defaults and AMIs; then every failure, the summary and
 *           an end record (accounts, finding counts, stats). Every record but meta, summary and end
 *           names its accountId and region; a stream without its end record is incomplete.
 *   CSV     the header, then one row per instance, page by page (sorted by id within a page).
 *
 * renderDiscover() writes the same records from a whole document (one page per scan, in the
 * document's order); discoverStream() writes them as they come, each piece whole, through a write
 * that waits for the output (backpressure).
 */
import type { AccountRecord, InstanceRecord, RegionScan, ScanFailure } from '../fleet/inventory/model.js';
import type { Finding, Severity } from '../fleet/posture/findings.js';
import type { PostureSummary } from '../fleet/posture/summary.js';
import { renderCsv } from './csv.js';
import type { DiscoverDocument, RunStats } from './fleet.js';
import { FLEET_SCHEMA_VERSION, findingsByInstance, instanceColumns } from './fleet-records.js';
import { renderNdjson } from './json.js';

export interface DiscoverStreamStart {
  /** ISO 8601: when the scan started. */
  generatedAt: string;
  regions: readonly string[];
}

/** A page of one scan's instances, with their own findings. */
export interface DiscoverInstancesPart {
  instances: readonly InstanceRecord[];
  findings: readonly Finding[];
}

/** A completed scan, with the findings of its templates, groups, defaults and AMIs. */
export interface DiscoverScanPart {
  scan: RegionScan;
  findings: readonly Finding[];
}

export interface DiscoverStreamEnd {
  accounts: readonly AccountRecord[];
  summary: PostureSummary;
  findingCounts: Record<Severity, number>;
  failures: readonly ScanFailure[];
  stats: RunStats;
}

export type StreamFormat = 'ndjson' | 'csv';

/** Records (ndjson) or rows (csv) per piece of text handed to the output at once. */
export const STREAM_CHUNK_RECORDS = 1000;

/** The text of each part of a streamed discover, in one format (large parts in pieces). */
interface Parts {
  start(m: DiscoverStreamStart): string;
  instances(p: DiscoverInstancesPart): Iterable<string>;
  scan(p: DiscoverScanPart): Iterable<string>;
  end(e: DiscoverStreamEnd): string;
}

function* chunks<T>(items: readonly T[], render: (part: readonly T[]) => string): Iterable<string> {
  for (let i = 0; i < items.length; i += STREAM_CHUNK_RECORDS) {
    yield render(items.slice(i, i + STREAM_CHUNK_RECORDS));
  }
}

const typed = (type: string) => (parts: readonly object[]) =>
  renderNdjson(parts.map((x) => ({ type, ...x })));

const NDJSON: Parts = {
  start: (m) =>
    renderNdjson([
      {
        type: 'meta',
        schemaVersion: FLEET_SCHEMA_VERSION,
        kind: 'imdsguard.fleet.discover',
        generatedAt: m.generatedAt,
        regions: m.regions,
      },
    ]),
  *instances(p) {
    yield* chunks(p.instances, typed('instance'));
    yield* chunks(p.findings, typed('finding'));
  },
  *scan(p) {
    yield typed('scan')([p.scan]);
    yield* chunks(p.findings, typed('finding'));
  },
  end: (e) =>
    renderNdjson([
      ...e.failures.map((f) => ({ type: 'failure', ...f })),
      { type: 'summary', ...e.summary.overall },
      { type: 'end', accounts: e.accounts, findingCounts: e.findingCounts, stats: e.stats },
    ]),
};

const CSV: Parts = {
  start: () => renderCsv([], instanceColumns(new Map())),
  instances(p) {
    const columns = instanceColumns(findingsByInstance(p.findings));
    return chunks(p.instances, (part) => renderCsv(part, columns, { header: false }));
  },
  scan: () => [],
  end: () => '',
};

const PARTS: Record<StreamFormat, Parts> = { ndjson: NDJSON, csv: CSV };

export interface DiscoverStream {
  start(m: DiscoverStreamStart): Promise<void>;
  instances(p: DiscoverInstancesPart): Promise<void>;
  scan(p: DiscoverScanPart): Promise<void>;
  end(e: DiscoverStreamEnd): Promise<void>;
}

/**
 * Writes each part as it comes; every write waits for the output to take it. Scans run together:
 * each part is written whole (its records together) before the next one starts.
 */
export function discoverStream(format: StreamFormat, write: (text: string) => Promise<void>): DiscoverStream {
  const parts = PARTS[format];
  let queue: Promise<void> = Promise.resolve();
  const inTurn = (texts: () => Iterable<string>): Promise<void> => {
    const turn = queue.then(async () => {
      for (const text of texts()) if (text !== '') await write(text);
    });
    queue = turn.catch(() => {});
    return turn;
  };
  return {
    start: (m) => inTurn(() => [parts.start(m)]),
    instances: (p) => inTurn(() => parts.instances(p)),
    scan: (p) => inTurn(() => parts.scan(p)),
    end: (e) => inTurn(() => [parts.end(e)]),
  };
}

/**
 * A whole discover document in the streamed layout: per scan in the document's order, its instances
 * and their findings, then the scan and its other findings; instances or findings whose account and
 * region has no scan come last (never dropped).
 */
export function renderDiscoverStreamed(
  doc: Pick<
    DiscoverDocument,
    'generatedAt' | 'regions' | 'accounts' | 'summary' | 'findingCounts' | 'failures' | 'stats' | 'scans'
  > & { instances: readonly InstanceRecord[]; findings: readonly Finding[] },
  format: StreamFormat,
): string {
  const parts = PARTS[format];
  const key = (x: { accountId: string; region: string }) => `${x.accountId}/${x.region}`;
  const groups = new Map<string, { instances: InstanceRecord[]; own: Finding[]; other: Finding[] }>();
  const group = (k: string) => {
    let g = groups.get(k);
    if (!g) {
      g = { instances: [], own: [], other: [] };
      groups.set(k, g);
    }
    return g;
  };
  for (const s of doc.scans) group(key(s));
  for (const i of doc.instances) group(key(i)).instances.push(i);
  for (const f of doc.findings) {
    const g = group(key(f));
    (f.resourceType === 'instance' ? g.own : g.other).push(f);
  }
  const out = [parts.start(doc)];
  for (const s of doc.scans) {
    const g = group(key(s));
    groups.delete(key(s));
    out.push(...parts.instances({ instances: g.instances, findings: g.own }));
    out.push(...parts.scan({ scan: s, findings: g.other }));
  }
  // No scan record for these (collectInventory never makes them; kept so nothing is lost).
  for (const g of groups.values()) {
    out.push(...parts.instances({ instances: g.instances, findings: [...g.own, ...g.other] }));
  }
  out.push(parts.end(doc));
  return out.join('');
}
