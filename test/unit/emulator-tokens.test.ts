import { describe, expect, it } from 'vitest';
import { RequestLog } from '../../src/emulator/request-log.js';
import { parseTtl, TokenIssuer } from '../../src/emulator/tokens.js';

describe('session tokens', () => {
  it('are valid until their TTL runs out and report the remaining seconds', () => {
    let now = 1_700_000_000_000;
    const t = new TokenIssuer(() => now, 'aws');
    const token = t.issue(60);
    expect(token).toMatch(/^AQAEA[A-Za-z0-9+/]{54}=$/);
    expect(t.check(token)).toEqual({ ok: true, remainingSeconds: 60 });
    now += 59_001;
    expect(t.check(token)).toEqual({ ok: true, remainingSeconds: 1 });
    now += 999;
    expect(t.check(token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('refuses tampered, foreign and malformed tokens', () => {
    const now = () => 1_700_000_000_000;
    const t = new TokenIssuer(now, 'aws');
    const token = t.issue(600);
    const raw = Buffer.from(token, 'base64');
    raw[10] = (raw[10] as number) ^ 0xff; // move the expiry
    expect(t.check(raw.toString('base64'))).toEqual({ ok: false, reason: 'invalid' });
    expect(new TokenIssuer(now, 'aws').check(token)).toEqual({ ok: false, reason: 'invalid' });
    const key = Buffer.alloc(32, 7);
    const a = new TokenIssuer(now, 'aws', key);
    expect(new TokenIssuer(now, 'alibaba', key).check(a.issue(60))).toEqual({ ok: false, reason: 'invalid' });
    expect(new TokenIssuer(now, 'aws', key).check(a.issue(60)).ok).toBe(true);
    for (const bad of ['', 'x', 'AQAEA', '!!!!', 'A'.repeat(300)]) {
      expect(t.check(bad)).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it.each([
    ['1', 1],
    ['21600', 21600],
    [' 300 ', 300],
    ['0', undefined],
    ['21601', undefined],
    ['-5', undefined],
    ['1.5', undefined],
    ['1e3', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('parses the TTL header %j', (value, expected) => {
    expect(parseTtl(value, 1, 21600)).toBe(expected);
  });
});

describe('request log', () => {
  it('keeps the newest entries, oldest first, within its capacity', () => {
    const log = new RequestLog(3);
    for (let n = 0; n < 5; n++) {
      log.push({ time: n, method: 'GET', path: `/${n}`, status: 200, tokenPut: false, withToken: false });
    }
    expect(log.entries().map((e) => e.path)).toEqual(['/2', '/3', '/4']);
    const copy = log.entries();
    (copy[0] as { path: string }).path = '/changed';
    expect(log.entries()[0]?.path).toBe('/2');
    log.clear();
    expect(log.entries()).toEqual([]);
  });
});
