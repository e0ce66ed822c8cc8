import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FINDINGS } from '../../src/fleet/posture/findings.js';

const doc = readFileSync(new URL('../../docs/findings.md', import.meta.url), 'utf8');

describe('docs/findings.md', () => {
  it('lists every finding id with its severity, and no other id', () => {
    const rows = [...doc.matchAll(/^\| `([a-z0-9-]+)`\s*\| (high|medium|low|info)\s*\|/gm)].map((m) => [
      m[1],
      m[2],
    ]);
    expect(Object.fromEntries(rows)).toEqual(
      Object.fromEntries(Object.entries(FINDINGS).map(([id, f]) => [id, f.severity])),
    );
  });

  it('explains every finding in its own section with a fix', () => {
    for (const [id, f] of Object.entries(FINDINGS)) {
      const start = doc.indexOf(`\n## ${id}\n`);
      expect(start, id).toBeGreaterThan(0);
      const section = doc.slice(start + 4, doc.indexOf('\n## ', start + 4) >>> 0);
      expect(section).toContain(`**Severity: ${f.severity}.**`);
      expect(section).toContain('**Fix:**');
    }
  });
});
