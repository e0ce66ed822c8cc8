import { describe, expect, it } from 'vitest';
import { humanWindow, toAlert } from '../../src/guard/alerts/alert.js';
import { backoffDelay, DEFAULT_RETRY, shouldAlert } from '../../src/guard/alerts/pipeline.js';
import { formatSyslog, sdEscape } from '../../src/guard/alerts/sinks/syslog.js';
import { makeEvent } from '../support/guard-events.js';

describe('toAlert', () => {
  it('copies the facts a person needs and drops argv', () => {
    const e = makeEvent({ reason: 'not allowed' });
    const a = toAlert(e);
    expect(a).toMatchObject({
      kind: 'event',
      id: e.id,
      decision: 'deny',
      rule: 'default-deny-v1',
      severity: 'warning',
      request: { method: 'GET', path: e.request.path, version: 'v1' },
      caller: { exe: '/usr/bin/curl', pid: 4242, user: 'www-data' },
    });
    expect(JSON.stringify(a)).not.toContain('SECRET-ARGV-VALUE');
    expect(a).not.toHaveProperty('caller.cmdline');
    expect(a.text).toBe(
      '[test-host] REFUSED v1 GET /latest/meta-data/iam/security-credentials/ from /usr/bin/curl (pid 4242, user www-data): not allowed (rule default-deny-v1, mode enforce)',
    );
  });

  it('marks trap events critical and bounds long fields', () => {
    const a = toAlert(
      makeEvent({ mode: 'trap', action: 'trapped', request: { path: `/${'x'.repeat(5000)}` } }),
    );
    expect(a.severity).toBe('critical');
    expect(a.request.path.length).toBeLessThanOrEqual(512);
    expect(a.text.length).toBeLessThanOrEqual(1000);
  });

  it('a token used by another caller than its holder is a warning, though forwarded', () => {
    const e = makeEvent({
      decision: 'allow',
      action: 'forwarded',
      rule: 'token-other-caller',
      token: { status: 'other-caller', why: 'pid 9 used a token issued to pid 8' },
    });
    expect(toAlert(e).severity).toBe('warning');
    expect(toAlert({ ...e, token: { status: 'issued-here' } }).severity).toBe('info');
  });

  it('names windows for people', () => {
    expect(humanWindow(300_000)).toBe('5 minutes');
    expect(humanWindow(60_000)).toBe('1 minute');
    expect(humanWindow(3_600_000)).toBe('1 hour');
    expect(humanWindow(1500)).toBe('1500 ms');
  });
});

describe('shouldAlert (quiet)', () => {
  it('alerts on alert events always, on allowed requests only when not quiet', () => {
    const allowed = makeEvent({ decision: 'allow', action: 'forwarded', alert: false });
    expect(shouldAlert(allowed, true)).toBe(false);
    expect(shouldAlert(allowed, false)).toBe(true);
    expect(shouldAlert(makeEvent(), true)).toBe(true);
  });
});

describe('backoff', () => {
  it('grows exponentially to the cap, jitter only shortens, Retry-After wins when longer', () => {
    const r = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
    expect(backoffDelay(1, r, () => 0)).toBe(100);
    expect(backoffDelay(2, r, () => 0)).toBe(200);
    expect(backoffDelay(4, r, () => 0)).toBe(800);
    expect(backoffDelay(10, r, () => 0)).toBe(1000);
    expect(backoffDelay(2, r, () => 1)).toBe(100);
    expect(backoffDelay(1, r, () => 0, 5000)).toBe(5000);
    expect(backoffDelay(4, r, () => 0, 10)).toBe(800);
    expect(backoffDelay(60, DEFAULT_RETRY, () => 0.5)).toBeLessThanOrEqual(DEFAULT_RETRY.maxMs);
  });
});

describe('syslog format', () => {
  it('escapes structured data values and cuts to the size limit', () => {
    expect(sdEscape('a"b\\c]d')).toBe('a\\"b\\\\c\\]d');
    const a = toAlert(makeEvent({ reason: 'é'.repeat(3000) }));
    const m = formatSyslog(a, { facility: 'auth', appName: 'imdsguard', procId: 1, maxMessageBytes: 600 });
    expect(Buffer.byteLength(m, 'utf8')).toBeLessThanOrEqual(600);
    expect(m.startsWith('<36>1 ')).toBe(true);
    expect(m).not.toContain('\uFFFD');
  });
});
