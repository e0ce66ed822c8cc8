import { describe, expect, it } from 'vitest';
import { tokenHasher, tokenKeys } from '../../src/guard/tokens/keyed-hash.js';
import { TokenLedger } from '../../src/guard/tokens/ledger.js';
import { MAX_CMDLINE_CHARS, REDACTED, Redactor } from '../../src/guard/tokens/redact.js';
import { leaks as leaksOf } from '../support/leaks.js';

const SECRET = 'Gu4rdP4ss-7e1c9a5b3d8f0e2a';
const TOKEN = 'AQAEAKz9pJ3_Lr4qHsN0bT7vWcXyZ1dE2fG3hI4jK5lM6nO7pQ8rS9tU0v==';
const hasher = tokenHasher(Buffer.alloc(32, 1));
const ledger = new TokenLedger();
ledger.issue(tokenKeys(hasher, TOKEN), 600, 0);

const redactor = new Redactor({
  secrets: [SECRET],
  secretNames: ['x-guard-pass'],
  tokens: {
    hasher,
    hasFingerprint: (f) => ledger.hasFingerprint(f),
    hasPrefix: (h) => ledger.hasPrefix(h),
    any: () => ledger.size > 0,
  },
});
/** Only by value: no names at all (to show value redaction alone catches these). */
const byValueOnly = new Redactor({
  secrets: [SECRET],
  secretNames: [],
  tokens: {
    hasher,
    hasFingerprint: (f) => ledger.hasFingerprint(f),
    hasPrefix: (h) => ledger.hasPrefix(h),
    any: () => true,
  },
});

/** The secret, the token, or any 12-character piece of either. */
function leaks(text: string): string[] {
  return leaksOf(text, { secret: SECRET, token: TOKEN });
}

const ARGV_CASES: Array<[string, string[]]> = [
  ['curl -H secret header', ['curl', '-H', `X-Guard-Pass: ${SECRET}`, 'http://169.254.169.254/']],
  ['curl -H joined', ['curl', `-HX-Guard-Pass:${SECRET}`]],
  ['curl token header', ['curl', '-H', `X-aws-ec2-metadata-token: ${TOKEN}`]],
  [
    'python3 -c multi-line',
    [
      'python3',
      '-c',
      `import urllib.request\nh = {\n    "X-aws-ec2-metadata-token": "${TOKEN}",\n    "X-Guard-Pass": "${SECRET}",\n}\nprint(h)\n`,
    ],
  ],
  ['python3 dict(**{})', ['python3', '-c', `headers=dict(**{"X-Guard-Pass":"${SECRET}"})`]],
  [
    'PowerShell @{}',
    [
      'pwsh',
      '-Command',
      `Invoke-RestMethod -Headers @{"X-aws-ec2-metadata-token" = "${TOKEN}"; "X-Guard-Pass"="${SECRET}"} -Uri http://169.254.169.254/`,
    ],
  ],
  [
    'Ruby hash',
    ['ruby', '-e', `h = {"X-aws-ec2-metadata-token" => "${TOKEN}", :"X-Guard-Pass" => '${SECRET}'}`],
  ],
  ['Go Header.Set', ['go', 'run', `req.Header.Set("X-aws-ec2-metadata-token", "${TOKEN}")`]],
  [
    'env-style assignment, neutral name',
    ['sh', '-c', `IMDS_T=${TOKEN} curl -H "X-aws-ec2-metadata-token: $IMDS_T" x`],
  ],
  ['export with quotes', ['bash', '-c', `export GP="${SECRET}"; curl -H "X-Guard-Pass: $GP" x`]],
  ['set --', ['sh', '-c', `set -- ${SECRET}; echo $1`]],
  ['bare values', ['tool', SECRET, TOKEN]],
  ['JSON', ['tool', JSON.stringify({ headers: { 'x-guard-pass': SECRET, t: TOKEN } })]],
  ['name and value as two arguments', ['tool', '--header-name', 'X-Guard-Pass', SECRET]],
  ['--pass=S and --token T', ['tool', `--pass=${SECRET}`, '--token', TOKEN]],
  ['URL query', ['curl', `http://x/?t=${TOKEN}&p=${SECRET}`]],
  [
    'a value cut by an argument bound (12 characters left)',
    ['tool', `prefix-${TOKEN.slice(0, 14)}…`, `v=${SECRET.slice(0, 13)}…`],
  ],
  ['inside a longer base64 run', ['tool', `QUJD${TOKEN}QUJD`]],
  ['the secret in a different case of the header name', ['curl', '-H', `x-GUARD-pass:${SECRET}`]],
];

describe('command lines are redacted by value and by shape', () => {
  it.each(ARGV_CASES)('%s', (_name, argv) => {
    const out = redactor.cmdline(argv);
    expect(leaks(out.join('\n')), JSON.stringify(out)).toEqual([]);
    expect(out.join(' ')).toContain(REDACTED);
  });

  it.each(ARGV_CASES)('by value alone: %s', (_name, argv) => {
    const out = byValueOnly.cmdline(argv);
    expect(leaks(out.join('\n')), JSON.stringify(out)).toEqual([]);
  });

  it('keeps what is not secret', () => {
    expect(redactor.cmdline(['curl', '-sS', 'http://169.254.169.254/latest/meta-data/'])).toEqual([
      'curl',
      '-sS',
      'http://169.254.169.254/latest/meta-data/',
    ]);
    expect(redactor.text('/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xmx2g')).toBe(
      '/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xmx2g',
    );
    expect(redactor.cmdline(['curl', '-H', 'X-aws-ec2-metadata-token: [redacted]'])).toEqual([
      'curl',
      '-H',
      'X-aws-ec2-metadata-token: [redacted]',
    ]);
  });

  it('redacts a token of the ledger only, by its prefix hash (a foreign token needs a secret-looking name)', () => {
    const foreign = 'AQAEAZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ==';
    expect(byValueOnly.text(`x ${foreign}`)).toBe(`x ${foreign}`);
    expect(byValueOnly.text(`x ${TOKEN} y`)).toBe(`x ${REDACTED} y`);
    expect(redactor.text(`token=${foreign}`)).toBe(`token=${REDACTED}`);
  });

  it('a value whose closing quote an argument bound cut off is still redacted by shape', () => {
    expect(redactor.text('h = {"X-aws-ec2-metadata-token" => "AQAEAAAAA…')).toBe(
      'h = {"X-aws-ec2-metadata-token" => "[redacted]…',
    );
    expect(redactor.text(`h = {'api_key' => 'abc`)).toBe(`h = {'api_key' => '[redacted]`);
    expect(redactor.text('{"token" => "x", "other" => "y"}')).toBe(
      '{"token" => "[redacted]", "other" => "y"}',
    );
  });

  it('a short secret is found whole', () => {
    const r = new Redactor({ secrets: ['s3cr3t!!'], secretNames: [] });
    expect(r.text('a s3cr3t!! b s3cr3t!!')).toBe(`a ${REDACTED} b ${REDACTED}`);
    expect(r.text('ends with s3cr…')).toBe(`ends with ${REDACTED}…`);
  });

  it('bounds a command line to MAX_CMDLINE_CHARS in all', () => {
    const argv = Array.from({ length: 64 }, (_, i) => `${i}-${'x'.repeat(250)}`);
    const out = redactor.cmdline(argv);
    expect(out.join('').length).toBeLessThanOrEqual(MAX_CMDLINE_CHARS + 32);
    expect(out.at(-1)).toMatch(/^…\(\+\d+ args\)$/);
    const one = redactor.cmdline(['y'.repeat(MAX_CMDLINE_CHARS * 2)]);
    expect(one).toEqual([`${'y'.repeat(MAX_CMDLINE_CHARS)}…`]);
  });

  it('hashes no piece while the ledger is empty', () => {
    let calls = 0;
    const tokens = {
      hasher: { ...hasher, prefix: (p: string) => `${calls++}${p}` },
      hasFingerprint: () => true,
      hasPrefix: () => false,
      any: () => false,
    };
    new Redactor({ secrets: [], secretNames: [], tokens }).text(TOKEN);
    expect(calls).toBe(0);
    tokens.any = () => true;
    new Redactor({ secrets: [], secretNames: [], tokens }).text(TOKEN);
    expect(calls).toBeGreaterThan(0);
  });
});
