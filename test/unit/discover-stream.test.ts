/**
 * The streamed discover layout: scans written whole even when they complete
 * together, large scans in bounded pieces, the whole-document ndjson in the same layout, and a
 * streamed output that waits for its reader (stdout 'drain') and opens its file once.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InstanceRecord } from '../../src/fleet/inventory/model.js';
import {
  countImageUsers,
  findFindings,
  findInstanceFindings,
  findScanFindings,
} from '../../src/fleet/posture/findings.js';
import { PostureTally, summarize } from '../../src/fleet/posture/summary.js';
import { discoverStream, STREAM_CHUNK_RECORDS } from '../../src/report/discover-stream.js';
import { discoverDocument, renderDiscover } from '../../src/report/fleet.js';
import { openStreamedOutput } from '../../src/report/output.js';
import { smallInventory, tinyRunStats } from '../support/fleet-records.js';

const inventory = smallInventory();
type Rec = { type: string } & Record<string, unknown>;
const parse = (text: string): Rec[] =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Rec);

function partsOf(inv = inventory) {
  return inv.scans.map((scan) => {
    const instances = inv.instances.filter((i) => i.accountId === scan.accountId && i.region === scan.region);
    return {
      scan,
      instances,
      own: findInstanceFindings(instances),
      other: findScanFindings(scan, countImageUsers(instances)),
    };
  });
}

describe('discoverStream', () => {
  it('writes each part whole, even when scans run together and the output is slow', async () => {
    let text = '';
    // Every write takes a turn of the event loop, as a pipe that is full would.
    const write = (t: string) =>
      new Promise<void>((done) =>
        setImmediate(() => {
          text += t;
          done();
        }),
      );
    const s = discoverStream('ndjson', write);
    const parts = partsOf();
    expect(parts.length).toBeGreaterThan(1);
    // A page of more than one chunk, so that its pieces could interleave with the others'.
    const big = parts[0] as (typeof parts)[number];
    const many: InstanceRecord[] = Array.from({ length: STREAM_CHUNK_RECORDS * 2 + 5 }, (_, n) => ({
      ...(big.instances[0] as InstanceRecord),
      instanceId: `i-${String(n).padStart(17, '0')}`,
    }));
    await s.start({ generatedAt: '2026-12-04T00:00:00.000Z', regions: inventory.regions });
    await Promise.all([
      s.instances({ instances: many, findings: findInstanceFindings(many) }),
      ...parts
        .slice(1)
        .flatMap((p) => [
          s.instances({ instances: p.instances, findings: p.own }),
          s.scan({ scan: p.scan, findings: p.other }),
        ]),
    ]);
    const recs = parse(text);
    expect(recs[0]?.type).toBe('meta');
    // The big page: its instances and then its findings, with nothing else between them.
    const first = recs.findIndex((r) => r.type === 'instance');
    const bigRecs = recs.slice(first, first + many.length + findInstanceFindings(many).length);
    expect(bigRecs.filter((r) => r.type === 'instance')).toHaveLength(many.length);
    expect(bigRecs.every((r) => r['region'] === big.scan.region)).toBe(true);
    expect(recs.filter((r) => r.type === 'instance')).toHaveLength(
      many.length + parts.slice(1).reduce((n, p) => n + p.instances.length, 0),
    );
    expect(recs.filter((r) => r.type === 'scan')).toHaveLength(parts.length - 1);
  });

  it('hands a large page to the output in pieces of at most STREAM_CHUNK_RECORDS records', async () => {
    const pieces: string[] = [];
    const s = discoverStream('csv', async (t) => {
      pieces.push(t);
    });
    const p = partsOf()[0] as ReturnType<typeof partsOf>[number];
    const many = Array.from({ length: STREAM_CHUNK_RECORDS * 3 }, (_, n) => ({
      ...(p.instances[0] as InstanceRecord),
      instanceId: `i-${n}`,
    }));
    await s.start({ generatedAt: 'x', regions: [] });
    await s.instances({ instances: many, findings: [] });
    await s.scan({ scan: p.scan, findings: p.other });
    await s.end({
      accounts: [],
      summary: summarize(inventory),
      findingCounts: { high: 0, medium: 0, low: 0, info: 0 },
      failures: [],
      stats: tinyRunStats(),
    });
    expect(pieces[0]).toMatch(/^account_id,region,instance_id,/);
    expect(pieces.slice(1)).toHaveLength(3);
    for (const piece of pieces.slice(1))
      expect(piece.trimEnd().split('\n')).toHaveLength(STREAM_CHUNK_RECORDS);
  });

  it('the whole-document ndjson has the streamed layout and loses no record', () => {
    const findings = findFindings(inventory);
    const doc = discoverDocument(inventory, summarize(inventory), findings, tinyRunStats());
    const recs = parse(renderDiscover(doc, 'ndjson'));
    expect(recs.map((r) => r.type).filter((t, n, a) => t !== a[n - 1])).toEqual(
      expect.arrayContaining(['meta', 'scan', 'summary', 'end']),
    );
    expect(recs[0]?.type).toBe('meta');
    expect(recs.at(-1)).toMatchObject({
      type: 'end',
      findingCounts: doc.findingCounts,
      accounts: doc.accounts,
    });
    expect(recs.filter((r) => r.type === 'instance')).toHaveLength(doc.instances.length);
    expect(recs.filter((r) => r.type === 'finding')).toHaveLength(findings.length);
    expect(recs.filter((r) => r.type === 'scan')).toHaveLength(doc.scans.length);
    // Per-page and per-scan findings are the same as the whole inventory's.
    expect(
      partsOf()
        .flatMap((p) => [...p.own, ...p.other])
        .map((f) => JSON.stringify(f))
        .sort(),
    ).toEqual(findings.map((f) => JSON.stringify(f)).sort());
  });

  it('PostureTally one instance at a time equals summarize over the inventory', () => {
    const tally = new PostureTally();
    const staged = new PostureTally();
    for (const p of partsOf().reverse()) {
      tally.addScan(p.scan);
      for (const i of p.instances) tally.addInstance(i);
      const st = staged.stage(p.scan.accountId, p.scan.region);
      for (const i of p.instances) st.add(i);
      staged.addScan(p.scan);
      st.commit();
    }
    expect(tally.summary()).toEqual(summarize(inventory));
    // Staged counts (committed when a scan completes) add up to the same.
    expect(staged.summary()).toEqual(summarize(inventory));
    // A stage never committed (a scan that failed part-way) counts nothing.
    const p0 = partsOf()[0] as ReturnType<typeof partsOf>[number];
    const dropped = staged.stage(p0.scan.accountId, p0.scan.region);
    for (const i of p0.instances) dropped.add(i);
    expect(staged.summary()).toEqual(summarize(inventory));
    // summary() returns copies: counting on does not change a summary already taken.
    const before = tally.summary();
    const first = inventory.instances.find((i) => i.state === 'running') as InstanceRecord;
    tally.addInstance(first);
    expect(before).toEqual(summarize(inventory));
    expect(tally.summary().overall.instances).toBe(before.overall.instances + 1);
  });
});

describe('openStreamedOutput', () => {
  it('on stdout, a write resolves only once a full stdout drained', async () => {
    const stdout = Object.assign(new EventEmitter(), {
      chunks: [] as string[],
      write(chunk: string) {
        this.chunks.push(chunk);
        return false;
      },
    });
    const out = openStreamedOutput(stdout, undefined, '/');
    let resolved = false;
    const w = out.write('a\n').then(() => {
      resolved = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(stdout.chunks).toEqual(['a\n']);
    expect(resolved).toBe(false);
    stdout.emit('drain');
    await w;
    expect(resolved).toBe(true);
  });

  it('to a file: concurrent first writes open it once, in order; nothing is created before a write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsguard-streamed-'));
    try {
      const file = join(dir, 'out.ndjson');
      const out = openStreamedOutput({ write: () => true }, 'out.ndjson', dir);
      expect(() => readFileSync(file)).toThrow(/ENOENT/);
      await Promise.all(Array.from({ length: 50 }, (_, n) => out.write(`${'x'.repeat(20_000)}${n}\n`)));
      await out.close();
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      expect(lines.map((l) => Number(l.slice(20_000)))).toEqual(Array.from({ length: 50 }, (_, n) => n));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('to a file that cannot be written: IMDSGUARD_E_OUTPUT naming the path', async () => {
    const out = openStreamedOutput({ write: () => true }, '/nonexistent-dir/x/out.csv', '/');
    await expect(out.write('a\n')).rejects.toMatchObject({
      code: 'IMDSGUARD_E_OUTPUT',
      message: expect.stringContaining('/nonexistent-dir/x/out.csv'),
    });
  });
});
