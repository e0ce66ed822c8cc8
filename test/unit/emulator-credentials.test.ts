import { describe, expect, it } from 'vitest';
import { awsCredentialsDocument, CredentialRotator, isoSeconds } from '../../src/emulator/credentials.js';

const HOUR = 3_600_000;

describe('credential rotation', () => {
  it('keeps a set until rotation is due, then issues a new one before the old one expires', () => {
    let now = Date.parse('2026-03-01T00:00:00Z');
    const r = new CredentialRotator({ now: () => now, lifetimeMs: 6 * HOUR, rotateAfterMs: 5 * HOUR });
    const first = r.get();
    expect(first.lastUpdated).toBe(now);
    expect(first.expiration).toBe(now + 6 * HOUR);
    now += 5 * HOUR - 1;
    expect(r.get()).toBe(first);
    now += 1;
    const second = r.get();
    expect(second.accessKeyId).not.toBe(first.accessKeyId);
    expect(second.secretAccessKey).not.toBe(first.secretAccessKey);
    expect(second.sessionToken).not.toBe(first.sessionToken);
    expect(now).toBeLessThan(first.expiration);
    expect(second.expiration).toBe(now + 6 * HOUR);
    expect(r.count).toBe(2);
  });

  it('rotates on demand and when the clock goes backwards', () => {
    let now = 1_000_000;
    const r = new CredentialRotator({ now: () => now, lifetimeMs: HOUR, rotateAfterMs: HOUR / 2 });
    const a = r.get();
    const b = r.rotate();
    expect(b.accessKeyId).not.toBe(a.accessKeyId);
    now -= 1;
    expect(r.get().accessKeyId).not.toBe(b.accessKeyId);
  });

  it('refuses a rotation period that is not below the lifetime', () => {
    expect(() => new CredentialRotator({ now: Date.now, lifetimeMs: HOUR, rotateAfterMs: HOUR })).toThrow(
      RangeError,
    );
  });

  it('generates realistic-looking random keys', () => {
    const r = new CredentialRotator({ now: Date.now, lifetimeMs: HOUR, rotateAfterMs: 1000 });
    const seen = new Set<string>();
    for (let n = 0; n < 20; n++) {
      const c = r.rotate();
      expect(c.accessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
      expect(c.secretAccessKey).toMatch(/^[A-Za-z0-9+/]{40}$/);
      expect(c.sessionToken.startsWith('IQoJb3JpZ2luX2Vj')).toBe(true);
      expect(c.sessionToken.length).toBeGreaterThan(700);
      seen.add(c.accessKeyId);
    }
    expect(seen.size).toBe(20);
  });

  it('writes the IMDS credentials document', () => {
    const now = Date.parse('2026-03-01T12:00:00.123Z');
    const r = new CredentialRotator({ now: () => now, lifetimeMs: 6 * HOUR, rotateAfterMs: 5 * HOUR });
    const set = r.get();
    const doc = JSON.parse(awsCredentialsDocument(set));
    expect(doc).toEqual({
      Code: 'Success',
      LastUpdated: '2026-03-01T12:00:00Z',
      Type: 'AWS-HMAC',
      AccessKeyId: set.accessKeyId,
      SecretAccessKey: set.secretAccessKey,
      Token: set.sessionToken,
      Expiration: '2026-03-01T18:00:00Z',
    });
    expect(isoSeconds(0)).toBe('1970-01-01T00:00:00Z');
  });
});
