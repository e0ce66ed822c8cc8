import type { z } from 'zod';

/**
 * Config problems in the project's words: what a key must be, what it got, and for an unknown key the
 * nearest known one (`guard.requirev2: unknown key (did you mean requireV2?)`). Pure: it reads the
 * schema and the raw input, never the validation library's own sentences, which it replaces.
 */

type Path = ReadonlyArray<PropertyKey>;

/** zod's own default wording ("Invalid input: expected number, received string", "Too small: ..."). */
const LIBRARY_WORDING = /^(Invalid|Too (small|big)|Unrecognized key)/;

/** Walks a schema along a data path and returns the schemas that may sit there (unions give several). */
function schemasAt(root: z.ZodType, path: Path): z.ZodType[] {
  let current: z.ZodType[] = [root];
  for (const step of path) {
    current = current.flatMap(unwrap).flatMap((s) => childOf(s, step));
  }
  return current.flatMap(unwrap);
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  options?: z.ZodType[];
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  left?: z.ZodType;
  right?: z.ZodType;
}

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** The object, array or record schemas behind wrappers (optional, default, pipe, union...). */
function unwrap(s: z.ZodType, depth = 0): z.ZodType[] {
  if (depth > 32) return [];
  const d = defOf(s);
  if (d.innerType !== undefined) return unwrap(d.innerType, depth + 1);
  if (d.type === 'pipe' && d.in !== undefined) return unwrap(d.in, depth + 1);
  if (d.type === 'union' && d.options !== undefined) return d.options.flatMap((o) => unwrap(o, depth + 1));
  if (d.type === 'intersection' && d.left !== undefined && d.right !== undefined) {
    return [...unwrap(d.left, depth + 1), ...unwrap(d.right, depth + 1)];
  }
  return [s];
}

function childOf(s: z.ZodType, step: PropertyKey): z.ZodType[] {
  const d = defOf(s);
  if (d.type === 'object' && typeof step === 'string' && d.shape !== undefined) {
    const child = d.shape[step];
    return child === undefined ? [] : [child];
  }
  if (d.type === 'array' && typeof step === 'number' && d.element !== undefined) return [d.element];
  if (d.type === 'record' && d.valueType !== undefined) return [d.valueType];
  return [];
}

/** The keys an object at this path may have (every option of a union together). */
export function knownKeys(root: z.ZodType, path: Path): string[] {
  const keys = new Set<string>();
  for (const s of schemasAt(root, path)) {
    const d = defOf(s);
    if (d.type === 'object' && d.shape !== undefined) for (const k of Object.keys(d.shape)) keys.add(k);
  }
  return [...keys];
}

/** Optimal string alignment distance (a swap of two neighbours counts as one edit). */
function distance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const prev = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row.push(best);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/**
 * The known name a mistyped one most likely meant: the same name in another case or spelling of
 * separators (requirev2 -> requireV2, max_buffered -> maxBuffered), else the nearest within a third of
 * its length (at least one edit). Undefined when nothing is close.
 */
export function didYouMean(name: string, candidates: readonly string[]): string | undefined {
  const fold = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');
  const same = candidates.find((c) => fold(c) === fold(name));
  if (same !== undefined) return same;
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = distance(fold(name), fold(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** The raw value at a path, or undefined when the input has nothing there. */
function valueAt(raw: unknown, path: Path): unknown {
  let v = raw;
  for (const step of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[step];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the text ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean')
    return `${typeof v === 'number' ? 'the number' : ''} ${v}`.trim();
  if (typeof v === 'object') return 'a section (an object)';
  return typeof v;
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a section (an object)',
  array: 'a list',
};

function quoteChoices(values: readonly unknown[]): string {
  return values.map((v) => String(v)).join(', ');
}

/** "must be one of a, b (did you mean a?)" or "is required (one of a, b)". */
function choiceText(values: readonly unknown[], value: unknown): string {
  if (value === undefined) return `is required (one of ${quoteChoices(values)})`;
  const guess = typeof value === 'string' ? didYouMean(value, values.map(String)) : undefined;
  return `must be one of ${quoteChoices(values)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}`;
}

/** One problem, without its path: "must be a number, got the text "x"", "is required", ... */
export function problemText(issue: z.core.$ZodIssue, raw: unknown): string {
  const value = valueAt(raw, issue.path);
  const missing = value === undefined;
  if (!LIBRARY_WORDING.test(issue.message) && issue.code !== 'unrecognized_keys') return issue.message;
  switch (issue.code) {
    case 'invalid_type': {
      if (missing) return 'is required';
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      return `must be ${expected}, got ${describe(value)}`;
    }
    case 'invalid_value':
      return choiceText(issue.values, value);
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const word = issue.code === 'too_small' ? 'least' : 'most';
      const strict = issue.inclusive === false;
      if (issue.origin === 'string') {
        return issue.code === 'too_small' && Number(bound) === 1
          ? 'must not be empty'
          : `must be at ${word} ${bound} characters long`;
      }
      if (issue.origin === 'array' || issue.origin === 'set') return `must have at ${word} ${bound} entries`;
      if (strict) return `must be ${issue.code === 'too_small' ? 'greater' : 'less'} than ${bound}`;
      return `must be at ${word} ${bound}`;
    }
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'invalid_format':
      return issue.format === 'url' ? 'must be a URL' : `must be a valid ${issue.format}`;
    case 'invalid_union': {
      const d = issue as { discriminator?: string; options?: unknown[] };
      if (d.options !== undefined && d.options.length > 0) return choiceText(d.options, value);
      return missing ? 'is required' : `does not have any of the accepted forms, got ${describe(value)}`;
    }
    default:
      return 'is not valid';
  }
}

/** "unknown key" plus, when one is close, "(did you mean requireV2?)". */
export function unknownKeyText(root: z.ZodType, path: Path, key: string): string {
  const guess = didYouMean(key, knownKeys(root, path));
  return guess === undefined ? 'unknown key' : `unknown key (did you mean ${guess}?)`;
}
