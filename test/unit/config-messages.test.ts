import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { didYouMean, knownKeys } from '../../src/config/messages.js';
import { configSchema } from '../../src/config/schema.js';
import { ImdsguardError } from '../../src/errors.js';

/** Config problems in the project's words, with did-you-mean; never the validation library's text. */

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ImdsguardError);
    expect((err as ImdsguardError).code).toBe('IMDSGUARD_E_CONFIG');
    return (err as ImdsguardError).details?.['problems'] as string[];
  }
  throw new Error('parseConfig accepted it');
}

/** zod's default sentences, which must never reach a user. */
const LIBRARY_TEXT =
  /Invalid input|Invalid option|Too small|Too big|Unrecognized key|expected .+, received|Invalid discriminator/;

describe('unknown keys: did you mean', () => {
  it.each([
    [{ guard: { requirev2: true } }, 'guard.requirev2: unknown key (did you mean requireV2?)'],
    [{ guard: { mdoe: 'enforce' } }, 'guard.mdoe: unknown key (did you mean mode?)'],
    [
      { guard: { limits: { maxHeaderByte: 9000 } } },
      'guard.limits.maxHeaderByte: unknown key (did you mean maxHeaderBytes?)',
    ],
    [{ guard: { allow_exe: ['/usr/bin/x'] } }, 'guard.allow_exe: unknown key (did you mean allowExe?)'],
    [{ gaurd: {} }, 'gaurd: unknown key (did you mean guard?)'],
    [
      { guard: { rules: [{ exe: '/usr/bin/x', actoin: 'allow', action: 'allow' }] } },
      'guard.rules[0].actoin: unknown key (did you mean action?)',
    ],
    [
      { alerts: { sinks: [{ type: 'webhook', url: 'http://127.0.0.1:1/', urll: 'x' }] } },
      'alerts.sinks[0].urll: unknown key (did you mean url?)',
    ],
  ])('%j', (raw, line) => {
    expect(problems(raw)).toContain(line);
  });

  it('suggests nothing when no known key is close', () => {
    expect(problems({ guard: { frobnicate: 1 } })).toEqual(['guard.frobnicate: unknown key']);
    expect(problems({ colour: 'red' })).toEqual(['colour: unknown key']);
  });

  it('knows the keys of every section, including each kind of alert sink', () => {
    expect(knownKeys(configSchema, ['guard'])).toEqual(
      expect.arrayContaining(['mode', 'requireV2', 'rules']),
    );
    expect(knownKeys(configSchema, ['guard', 'rules', 3])).toEqual(expect.arrayContaining(['exe', 'action']));
    expect(knownKeys(configSchema, ['alerts', 'sinks', 0])).toEqual(
      expect.arrayContaining(['type', 'url', 'group']),
    );
    expect(knownKeys(configSchema, ['guard', 'mode'])).toEqual([]);
  });

  it('didYouMean: case and separators first, then a small edit distance', () => {
    expect(didYouMean('REQUIREV2', ['requireV2', 'mode'])).toBe('requireV2');
    expect(didYouMean('max-buffered', ['maxBuffered'])).toBe('maxBuffered');
    expect(didYouMean('moed', ['mode', 'rules'])).toBe('mode');
    expect(didYouMean('x', ['mode'])).toBeUndefined();
    expect(didYouMean('anything', [])).toBeUndefined();
  });
});

describe('bad values in the project words', () => {
  it.each([
    [
      { guard: { mode: 'enforec' } },
      'guard.mode: must be one of enforce, monitor, trap (did you mean enforce?)',
    ],
    [{ guard: { mode: 'block' } }, 'guard.mode: must be one of enforce, monitor, trap'],
    [
      { guard: { limits: { maxHeaderBytes: 'x' } } },
      'guard.limits.maxHeaderBytes: must be a number, got the text "x"',
    ],
    [{ guard: { limits: { maxHeaderBytes: 1 } } }, 'guard.limits.maxHeaderBytes: must be at least 1024'],
    [{ guard: { upstream: 5 } }, 'guard.upstream: must be a string, got the number 5'],
    [{ guard: null }, 'guard: must be a section (an object), got null'],
    [{ events: { file: '' } }, 'events.file: must not be empty'],
    [
      { guard: { rules: [{ exe: '/usr/bin/x' }] } },
      'guard.rules[0].action: is required (one of allow, deny)',
    ],
    [
      { alerts: { sinks: [{ type: 'slak-webhook', url: 'https://hooks.slack.com/x' }] } },
      'alerts.sinks[0].type: must be one of slack-webhook, slack-api, webhook, syslog, file, cloudwatch-logs (did you mean slack-webhook?)',
    ],
  ])('%j', (raw, line) => {
    const found = problems(raw);
    expect(found).toContain(line);
    for (const p of found) expect(p).not.toMatch(LIBRARY_TEXT);
  });

  it('keeps the schema-written messages as they are', () => {
    expect(problems({ guard: { rules: [{ exe: 'python3', action: 'allow' }] } })).toEqual([
      'guard.rules[0].exe: must be an absolute path',
    ]);
  });
});
