import { describe, expect, it } from 'vitest';
import { normalizeTarget } from '../../src/imds/path.js';

function ok(target: string) {
  const r = normalizeTarget(target);
  if (!r.ok) throw new Error(`expected ok for ${target}: ${r.reason}`);
  return r;
}

describe('normalizeTarget', () => {
  it.each([
    ['/latest/meta-data/', '/latest/meta-data/'],
    ['/latest/meta-data', '/latest/meta-data'],
    ['//latest//meta-data///iam/', '/latest/meta-data/iam/'],
    ['/latest/meta-data/iam/info/../security-credentials/', '/latest/meta-data/iam/security-credentials/'],
    ['/latest/meta-data/./iam/./info', '/latest/meta-data/iam/info'],
    ['/../../latest/user-data', '/latest/user-data'],
    ['/latest/meta-data/iam/%73ecurity-credentials/', '/latest/meta-data/iam/security-credentials/'],
    [
      '/latest/meta-data/iam/info/%2e%2e/security-credentials/r',
      '/latest/meta-data/iam/security-credentials/r',
    ],
    [
      '/latest/meta-data/iam/info/%2E%2E%2Fsecurity-credentials/r',
      '/latest/meta-data/iam/security-credentials/r',
    ],
    ['/latest/meta-data/iam%2Fsecurity-credentials%2F', '/latest/meta-data/iam/security-credentials/'],
    ['/latest/meta-data/iam\\security-credentials', '/latest/meta-data/iam/security-credentials'],
    ['/latest/meta-data/iam%5Csecurity-credentials', '/latest/meta-data/iam/security-credentials'],
    ['/latest/meta-data/iam/..', '/latest/meta-data/'],
    ['/latest/meta-data/iam/.', '/latest/meta-data/iam/'],
    ['/', '/'],
    ['/..', '/'],
  ])('%s -> %s', (target, path) => {
    expect(ok(target).path).toBe(path);
  });

  it('strips the query for matching and keeps it for forwarding', () => {
    const r = ok('/metadata/instance?api-version=2021-02-01&format=json');
    expect(r.path).toBe('/metadata/instance');
    expect(r.query).toBe('?api-version=2021-02-01&format=json');
    expect(r.forwardPath).toBe('/metadata/instance?api-version=2021-02-01&format=json');
    expect(r.changed).toBe(false);
  });

  it('forwards the canonical form so the upstream serves what was matched', () => {
    const r = ok('/latest/meta-data/iam/info/%2e%2e%2Fsecurity-credentials/r?x=1');
    expect(r.forwardPath).toBe('/latest/meta-data/iam/security-credentials/r?x=1');
    expect(r.changed).toBe(true);
  });

  it('decodes only once, and refuses a path still encoded after it (double encoding)', () => {
    for (const t of [
      '/latest/meta-data/iam/%252e%252e/x',
      '/latest/meta-data/iam/info/%252e%252e%252fsecurity-credentials/',
      '/latest/meta-data/iam/info/%25%32%65%25%32%65/security-credentials/',
      '/latest/meta-data/%25',
    ]) {
      const r = normalizeTarget(t);
      expect(r.ok, t).toBe(false);
      if (!r.ok) expect(r.reason).toContain('still percent-encoded');
    }
  });

  it('re-encodes characters that would change meaning upstream', () => {
    const r = ok('/a%3Fb%23c%20d');
    expect(r.path).toBe('/a?b#c d');
    expect(r.forwardPath).toBe('/a%3Fb%23c%20d');
  });

  it.each([
    ['/latest/%zz', 'malformed percent-encoding'],
    ['/latest/%', 'malformed percent-encoding'],
    ['/latest/%c3%28', 'malformed percent-encoding'],
    ['/latest/%00', 'control character'],
    ['/latest/%0d%0aX-Injected: 1', 'control character'],
    ['/latest#frag', '"#"'],
    ['latest/meta-data', 'does not start'],
  ])('refuses %s', (target, reason) => {
    const r = normalizeTarget(target);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('recognizes absolute-form, authority-form and asterisk-form', () => {
    const abs = normalizeTarget('http://169.254.169.254/latest/meta-data/');
    expect(abs.ok && abs.form).toBe('absolute');
    if (abs.ok) {
      expect(abs.path).toBe('/latest/meta-data/');
      expect(abs.authority).toBe('169.254.169.254');
    }
    expect(normalizeTarget('169.254.169.254:80')).toMatchObject({ ok: false, form: 'authority' });
    expect(normalizeTarget('*')).toMatchObject({ ok: false, form: 'asterisk' });
  });
});
