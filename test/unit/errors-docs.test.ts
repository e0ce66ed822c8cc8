import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

function documented(): Map<string, number> {
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\|\s*`(IMDSGUARD_E_[A-Z0-9_]+)`\s*\|\s*(\d)\s*\|/gm)) {
    rows.set(m[1] as string, Number(m[2]));
  }
  return rows;
}

describe('docs/errors.md', () => {
  it('lists exactly the codes in src/errors.ts', () => {
    expect([...documented().keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('documents the exit code each error maps to', () => {
    const rows = documented();
    for (const [code, def] of Object.entries(ERROR_CODES)) {
      expect({ code, exit: rows.get(code) }).toEqual({ code, exit: def.exit });
    }
  });
});
