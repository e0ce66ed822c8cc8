import { describe, expect, it } from 'vitest';
import { findFindings } from '../../src/fleet/posture/findings.js';
import { groupByRole } from '../../src/fleet/posture/roles.js';
import { summarize } from '../../src/fleet/posture/summary.js';
import { escapeCsvCell, renderCsv } from '../../src/report/csv.js';
import { discoverDocument, renderDiscover, renderRoles, rolesDocument } from '../../src/report/fleet.js';
import { renderJson, renderNdjson } from '../../src/report/json.js';
import { resolveFormat } from '../../src/report/output.js';
import { renderTable, sanitizeCell } from '../../src/report/table.js';
import { smallInventory, tinyRunStats } from '../support/fleet-records.js';

const inventory = smallInventory();
const stats = tinyRunStats();

/** A small RFC 4180 parser to check the CSV round-trips. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  return rows;
}

describe('csv', () => {
  it('quotes commas, quotes, newlines and edge spaces, and round-trips', () => {
    const rows = [
      { a: 'plain', b: 'x,y', c: 'say "hi"' },
      { a: 'two\nlines', b: ' pad ', c: '' },
    ];
    const cols = [
      { header: 'a', value: (r: (typeof rows)[number]) => r.a },
      { header: 'b', value: (r: (typeof rows)[number]) => r.b },
      { header: 'c', value: (r: (typeof rows)[number]) => r.c },
    ];
    const out = renderCsv(rows, cols);
    expect(out).toBe('a,b,c\nplain,"x,y","say ""hi"""\n"two\nlines"," pad ",\n');
    expect(parseCsv(out)).toEqual([
      ['a', 'b', 'c'],
      ['plain', 'x,y', 'say "hi"'],
      ['two\nlines', ' pad ', ''],
    ]);
  });

  it('guards formula cells but never numbers', () => {
    expect(escapeCsvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(escapeCsvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(escapeCsvCell('-1', false)).toBe('-1');
    expect(renderCsv([{ n: -1 }], [{ header: 'n', value: (r: { n: number }) => r.n }])).toBe('n\n-1\n');
  });

  it('renders one row per instance for discover, with a header', () => {
    const doc = discoverDocument(inventory, summarize(inventory), findFindings(inventory), stats);
    const rows = parseCsv(renderDiscover(doc, 'csv'));
    expect(rows).toHaveLength(1 + inventory.instances.length);
    const header = rows[0] as string[];
    const idx = (h: string) => header.indexOf(h);
    const ia = rows.find((r) => r[idx('instance_id')] === 'i-a') as string[];
    expect(ia[idx('http_tokens')]).toBe('optional');
    expect(ia[idx('imdsv1_allowed')]).toBe('true');
    expect(ia[idx('findings')]).toBe('instance-imdsv1-with-role');
    expect(ia[idx('launch_template_id')]).toBe('lt-1');
  });
});

describe('json and ndjson', () => {
  it('discover json is one valid document with schemaVersion', () => {
    const doc = discoverDocument(inventory, summarize(inventory), findFindings(inventory), stats);
    const parsed = JSON.parse(renderDiscover(doc, 'json')) as Record<string, unknown>;
    expect(parsed['schemaVersion']).toBe(1);
    expect(parsed['kind']).toBe('imdsguard.fleet.discover');
    expect((parsed['instances'] as unknown[]).length).toBe(9);
    expect(parsed['findingCounts']).toEqual({ high: 5, medium: 5, low: 2, info: 2 });
  });

  it('ndjson has one valid JSON object per line, typed', () => {
    const doc = discoverDocument(inventory, summarize(inventory), findFindings(inventory), stats);
    const lines = renderDiscover(doc, 'ndjson').trimEnd().split('\n');
    const records = lines.map((l) => JSON.parse(l) as { type: string });
    expect(records[0]?.type).toBe('meta');
    expect(records.filter((r) => r.type === 'instance')).toHaveLength(9);
    expect(records.filter((r) => r.type === 'finding')).toHaveLength(14);
    expect(renderNdjson([])).toBe('');
    expect(renderJson({ a: '\u2028' })).toBe('{\n  "a": "\u2028"\n}\n');
  });

  it('roles json and csv list every instance of every group', () => {
    const groups = groupByRole(inventory.instances);
    const doc = rolesDocument(inventory, groups, stats);
    expect(
      (JSON.parse(renderRoles(doc, 'json', inventory.instances)) as { groups: unknown[] }).groups,
    ).toHaveLength(4);
    const rows = parseCsv(renderRoles(doc, 'csv', inventory.instances));
    expect(rows).toHaveLength(1 + 8);
    expect(renderRoles(doc, 'table', inventory.instances)).toContain('eks-node');
  });
});

describe('table', () => {
  it('aligns columns and strips control characters', () => {
    const out = renderTable(
      [
        { k: 'a\u001b[31mred', n: 5 },
        { k: 'bb', n: 10 },
      ],
      [
        { header: 'key', value: (r: { k: string; n: number }) => r.k },
        { header: 'n', value: (r: { k: string; n: number }) => r.n, align: 'right' },
      ],
    );
    expect(out).not.toContain('\u001b');
    expect(out.split('\n')[0]).toBe('KEY         N');
    expect(out.split('\n')[1]).toBe('a?[31mred   5');
    expect(sanitizeCell('a\nb\tc')).toBe('a b c');
  });

  it('discover table shows the posture line and findings', () => {
    const doc = discoverDocument(inventory, summarize(inventory), findFindings(inventory), stats);
    const t = renderDiscover(doc, 'table');
    expect(t).toContain('IMDS posture: 8 instances in 2 account(s) x 1 region(s)');
    expect(t).toContain('Findings: 5 high, 5 medium, 2 low, 2 info');
    expect(t).toContain('asg-launches-imdsv1');
  });

  it('defaults to a table on a terminal and json otherwise', () => {
    expect(resolveFormat(undefined, true)).toBe('table');
    expect(resolveFormat(undefined, false)).toBe('json');
    expect(resolveFormat('csv', true)).toBe('csv');
  });
});
