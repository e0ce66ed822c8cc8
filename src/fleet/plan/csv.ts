/**
 * PURE: reads the instance list of --input-file. A CSV with a header row and any number of rows
 * (RFC 4180 quoting, a UTF-8 BOM, CRLF or LF, blank lines ignored). The instance id column is
 * `instance_id` (also InstanceId, instance-id, id); optional `account_id` and `region` columns scope a
 * row to one account and region. The CSV of `fleet discover --format csv` is accepted as it is.
 * A bad row is an IMDSGUARD_E_INPUT_FILE error naming the file and the line.
 */
import { ImdsguardError } from '../../errors.js';

export interface InstanceRef {
  instanceId: string;
  accountId: string | null;
  region: string | null;
}

/** Bounds, with units. */
export const CSV_LIMITS = {
  /** Data rows per file. */
  maxRows: 1_000_000,
  /** Characters per field. */
  maxFieldChars: 4096,
} as const;

const INSTANCE_ID_RE = /^i-[0-9a-f]{8,17}$/;
const ACCOUNT_RE = /^\d{12}$/;
const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

export function isInstanceId(s: string): boolean {
  return INSTANCE_ID_RE.test(s);
}

function fail(source: string, line: number, message: string): never {
  throw new ImdsguardError('IMDSGUARD_E_INPUT_FILE', `${source}:${line}: ${message}`, {
    hint: 'the file needs a header row with an instance_id column (optional account_id and region columns)',
    details: { file: source, line },
  });
}

interface Record_ {
  line: number;
  fields: string[];
}

/** Splits CSV text into records with the line each starts on. */
export function parseCsvRecords(text: string, source = 'input'): Record_[] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const out: Record_[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let quoted = false;
  let wasQuoted = false;
  let i = 0;
  const endField = () => {
    if (field.length > CSV_LIMITS.maxFieldChars)
      fail(source, recordLine, `a field is longer than ${CSV_LIMITS.maxFieldChars} characters`);
    fields.push(wasQuoted ? field : field.trim());
    field = '';
    wasQuoted = false;
  };
  const endRecord = () => {
    endField();
    // Blank lines (one empty unquoted field) are ignored.
    if (!(fields.length === 1 && fields[0] === '')) out.push({ line: recordLine, fields });
    if (out.length > CSV_LIMITS.maxRows + 1) fail(source, recordLine, `more than ${CSV_LIMITS.maxRows} rows`);
    fields = [];
  };
  while (i < s.length) {
    const c = s[i] as string;
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i += 1;
        continue;
      }
      if (c === '\n') line += 1;
      field += c;
      i += 1;
      continue;
    }
    if (c === '"') {
      if (field.trim() !== '') fail(source, line, 'a quote in the middle of an unquoted field');
      field = '';
      quoted = true;
      wasQuoted = true;
      i += 1;
      continue;
    }
    if (c === ',') {
      endField();
      i += 1;
      continue;
    }
    if (c === '\r' || c === '\n') {
      endRecord();
      if (c === '\r' && s[i + 1] === '\n') i += 1;
      i += 1;
      line += 1;
      recordLine = line;
      continue;
    }
    if (wasQuoted && c !== ' ' && c !== '\t') fail(source, line, 'text after a closing quote');
    field += c;
    i += 1;
  }
  if (quoted) fail(source, recordLine, 'a quoted field is not closed');
  if (field !== '' || fields.length > 0 || wasQuoted) endRecord();
  return out;
}

function norm(h: string): string {
  return h.toLowerCase().replace(/[^a-z0-9]/g, '');
}

const ID_HEADERS = new Set(['instanceid', 'id', 'resource', 'resourceid']);
const ACCOUNT_HEADERS = new Set(['accountid', 'account']);
const REGION_HEADERS = new Set(['region', 'regionname']);

/** Parses the CSV text of --input-file into instance references (duplicates removed, order kept). */
export function parseInstanceCsv(text: string, source = 'input'): InstanceRef[] {
  const records = parseCsvRecords(text, source);
  const header = records[0];
  if (!header) fail(source, 1, 'the file is empty (expected a header row with an instance_id column)');
  const names = header.fields.map(norm);
  const idCol = names.findIndex((n) => ID_HEADERS.has(n));
  if (idCol < 0) {
    if (header.fields.some((f) => isInstanceId(f))) {
      fail(
        source,
        header.line,
        'the first row is an instance id, but a header row is required (instance_id)',
      );
    }
    fail(source, header.line, `no instance_id column in the header (${header.fields.join(', ')})`);
  }
  const accountCol = names.findIndex((n) => ACCOUNT_HEADERS.has(n));
  const regionCol = names.findIndex((n) => REGION_HEADERS.has(n));
  const seen = new Set<string>();
  const out: InstanceRef[] = [];
  for (const rec of records.slice(1)) {
    const id = rec.fields[idCol] ?? '';
    if (id === '') fail(source, rec.line, `the instance_id field is empty (row: ${rec.fields.join(',')})`);
    if (!isInstanceId(id))
      fail(source, rec.line, `"${id.slice(0, 64)}" is not an instance id (i-0123456789abcdef0)`);
    const accountId = accountCol >= 0 ? (rec.fields[accountCol] ?? '') : '';
    if (accountId !== '' && !ACCOUNT_RE.test(accountId))
      fail(source, rec.line, `"${accountId.slice(0, 64)}" is not a 12-digit account id`);
    const region = regionCol >= 0 ? (rec.fields[regionCol] ?? '') : '';
    if (region !== '' && !REGION_RE.test(region))
      fail(source, rec.line, `"${region.slice(0, 64)}" is not a region name`);
    const ref: InstanceRef = {
      instanceId: id,
      accountId: accountId === '' ? null : accountId,
      region: region === '' ? null : region,
    };
    const key = `${ref.accountId ?? '*'}/${ref.region ?? '*'}/${id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(ref);
  }
  return out;
}
