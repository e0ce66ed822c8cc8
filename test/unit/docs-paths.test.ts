import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The docs name source files and folders (`src/guard/proxy/forward.ts`, `src/fleet/plan/`) for
 * readers to open: each must exist, so that a move or a split updates the docs that point at it.
 */

const ROOT = join(import.meta.dirname, '..', '..');

/** A src/ path as docs write it: folders and file names, ending before punctuation or a glob. */
const SRC_PATH = /(?<![\w/.-])src\/[\w./-]*[\w/]/g;

function docs(): string[] {
  const dir = join(ROOT, 'docs');
  return [
    'README.md',
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.md'))
      .map((f) => join('docs', f)),
  ];
}

/** Every src/ path each doc names, with its line. */
function srcPathsIn(text: string): Array<{ path: string; line: number }> {
  const out: Array<{ path: string; line: number }> = [];
  text.split('\n').forEach((l, i) => {
    for (const m of l.matchAll(SRC_PATH)) out.push({ path: m[0].replace(/\.$/, ''), line: i + 1 });
  });
  return out;
}

describe('src/ paths named in the docs', () => {
  it('finds the paths a doc writes, and only those', () => {
    expect(
      srcPathsIn(
        'See `src/guard/proxy/forward.ts`, the folder src/fleet/plan/ and src/host/*-io.ts.\nNot mysrc/x.',
      ).map((p) => p.path),
    ).toEqual(['src/guard/proxy/forward.ts', 'src/fleet/plan/', 'src/host/']);
  });

  it('every one exists', () => {
    const missing: string[] = [];
    let seen = 0;
    for (const doc of docs()) {
      for (const { path, line } of srcPathsIn(readFileSync(join(ROOT, doc), 'utf8'))) {
        seen++;
        if (!existsSync(join(ROOT, path))) missing.push(`${doc}:${line} ${path}`);
      }
    }
    expect(seen).toBeGreaterThan(20);
    expect(missing).toEqual([]);
  });
});
