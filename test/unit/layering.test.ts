import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering rule of DESIGN.md: core code never imports the CLI, and no source file grows past
 * 500 lines. The CLI parses, calls a use case and renders; everything below it must be usable
 * without it (tests, the demo, other front ends).
 */
const ROOT = resolve(import.meta.dirname, '../..');
const SRC = join(ROOT, 'src');
const CORE = [
  'guard',
  'fleet',
  'config',
  'imds',
  'io',
  'net',
  'report',
  'emulator',
  'host',
  'storage',
  'native',
  'demo',
];
const MAX_LINES = 500;
/**
 * Files still being split, with the length they may not exceed. Each entry goes as its file is
 * split; an entry whose file is already short enough fails too, so the list only shrinks.
 */
const SPLITTING: Record<string, number> = {};

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier a file imports or re-exports, static or dynamic. */
function importsOf(source: string): string[] {
  const specs: string[] = [];
  const re = /(?:^|\s)(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m = re.exec(source); m; m = re.exec(source)) specs.push((m[1] ?? m[2]) as string);
  return specs;
}

describe('layering', () => {
  it('finds imports in every form it must judge', () => {
    const src = `import a from '../cli/x.js';\nimport { b,\n c } from "../../cli/y.js";\nexport * from '../cli/z.js';\nconst d = await import('../cli/w.js');`;
    expect(importsOf(src)).toEqual(['../cli/x.js', '../../cli/y.js', '../cli/z.js', '../cli/w.js']);
  });

  it('no core folder imports src/cli', () => {
    const offenders: string[] = [];
    for (const folder of CORE) {
      const dir = join(SRC, folder);
      let files: string[] = [];
      try {
        files = tsFiles(dir);
      } catch {
        continue; // the folder does not exist (yet)
      }
      for (const f of files) {
        for (const spec of importsOf(readFileSync(f, 'utf8'))) {
          if (!spec.startsWith('.')) continue;
          const target = relative(SRC, resolve(dirname(f), spec));
          if (target === 'cli' || target.startsWith(`cli/`))
            offenders.push(`${relative(ROOT, f)} -> ${spec}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  it(`no source file is longer than ${MAX_LINES} lines`, () => {
    const sizes = tsFiles(SRC).map((f) => ({
      f: relative(ROOT, f),
      n: readFileSync(f, 'utf8').split('\n').length - 1,
    }));
    const long = sizes.filter((x) => x.n > (SPLITTING[x.f] ?? MAX_LINES)).map((x) => `${x.f} (${x.n})`);
    expect(long).toEqual([]);
    const done = Object.keys(SPLITTING).filter((f) => (sizes.find((x) => x.f === f)?.n ?? 0) <= MAX_LINES);
    expect(done, 'split already: remove from SPLITTING').toEqual([]);
  });
});
