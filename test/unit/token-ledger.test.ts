import { describe, expect, it } from 'vitest';
import type { Caller } from '../../src/guard/attribution/types.js';
import { holderOf, otherCallerReason, type TokenHolder } from '../../src/guard/tokens/holder.js';
import { PREFIX_CHARS, tokenHasher, tokenKeys } from '../../src/guard/tokens/keyed-hash.js';
import { TokenLedger } from '../../src/guard/tokens/ledger.js';
import { decodeLedger, encodeLedger } from '../../src/guard/tokens/ledger-file.js';

const KEY = Buffer.alloc(32, 7);
const hasher = tokenHasher(KEY);
const T0 = 1_800_000_000_000;
const TOKEN = 'AQAEAFakeTokenForTheLedgerTestsAbCdEfGhIjKlMnOpQrStUvWx==';

function issue(l: TokenLedger, token: string, ttl: number, now: number, holder?: TokenHolder) {
  return l.issue(tokenKeys(hasher, token), ttl, now, holder);
}

const agent: TokenHolder = { pid: 4100, startTime: '9001', exe: '/usr/bin/agent', uid: 0, ancestors: [1] };

describe('keyed hashes', () => {
  it('depend on the key, never contain the token, and separate whole tokens from prefixes', () => {
    const other = tokenHasher(Buffer.alloc(32, 8));
    expect(hasher.token(TOKEN)).not.toBe(other.token(TOKEN));
    expect(hasher.token(TOKEN)).not.toContain(TOKEN.slice(0, 8));
    expect(hasher.token('abcdefghijkl')).not.toBe(hasher.prefix('abcdefghijkl'));
    expect(hasher.keyId).not.toBe(other.keyId);
    expect(() => tokenHasher(Buffer.alloc(4))).toThrow(/16 bytes/);
  });
});

describe('the ledger judges a token', () => {
  it('issued-here for its holder, unknown for anything else, expired past the TTL the upstream answered', () => {
    const l = new TokenLedger();
    issue(l, TOKEN, 60, T0, agent);
    expect(l.check(hasher.token(TOKEN), agent, T0 + 1000)).toEqual({ status: 'issued-here', ttlSeconds: 59 });
    expect(l.check(hasher.token(`${TOKEN}x`), agent, T0).status).toBe('unknown');
    expect(l.check(hasher.token(TOKEN), agent, T0 + 60_000).status).toBe('expired');
    expect(l.check(hasher.token(TOKEN), agent, T0 + 59_999).status).toBe('issued-here');
  });

  it('clips the TTL to 1..21600 s', () => {
    const l = new TokenLedger();
    expect(issue(l, TOKEN, 99_999, T0).expiresAtMs).toBe(T0 + 21_600_000);
    expect(issue(l, 'AQAEAnotherTokenValue0123456789', 0, T0).expiresAtMs).toBe(T0 + 1000);
  });

  it('other-caller for an unrelated process, another uid, container, pod or network namespace', () => {
    const l = new TokenLedger();
    issue(l, TOKEN, 600, T0, agent);
    const h = hasher.token(TOKEN);
    const thief: TokenHolder = {
      pid: 5200,
      startTime: '9100',
      exe: '/usr/bin/python3',
      uid: 0,
      ancestors: [5100, 1],
    };
    const v = l.check(h, thief, T0);
    expect(v.status).toBe('other-caller');
    expect(v.reason).toMatch(/pid 5200 \(\/usr\/bin\/python3\) used a token issued to pid 4100/);
    expect(v.holder?.pid).toBe(4100);
    expect(l.check(h, { ...agent, uid: 1000 }, T0).status).toBe('other-caller');
    expect(l.check(h, { ...agent, container: 'c0ffee' }, T0).status).toBe('other-caller');
    expect(l.check(h, { ...agent, pod: 'default/x' }, T0).status).toBe('issued-here'); // holder pod unknown
    expect(l.check(h, { ...agent, netns: 'other' }, T0).status).toBe('issued-here');
    issue(l, `${TOKEN}P`, 600, T0, { ...agent, pod: 'kube-system/aws-node', netns: 'host' });
    const hp = hasher.token(`${TOKEN}P`);
    expect(l.check(hp, { ...agent, pod: 'default/web', netns: 'host' }, T0).status).toBe('other-caller');
    expect(l.check(hp, { ...agent, pod: 'kube-system/aws-node', netns: 'other' }, T0).status).toBe(
      'other-caller',
    );
    // a reused pid is another process
    expect(l.check(h, { ...agent, startTime: '12345' }, T0).reason).toMatch(/reused/);
  });

  it("a holder's own family is the holder: children, parents, and the shell pattern's sibling curls", () => {
    const script: TokenHolder = { pid: 700, uid: 1000, exe: '/usr/bin/curl', ancestors: [650, 600, 1] };
    // TOKEN=$(curl -X PUT ...) runs curl in a subshell (650) of the script (600); the next curl is the script's child
    const l = new TokenLedger();
    issue(l, TOKEN, 600, T0, script);
    const h = hasher.token(TOKEN);
    expect(
      l.check(h, { pid: 710, uid: 1000, exe: '/usr/bin/curl', ancestors: [600, 500, 1] }, T0).status,
    ).toBe('issued-here');
    expect(l.check(h, { pid: 720, uid: 1000, ancestors: [700, 650] }, T0).status).toBe('issued-here'); // a child
    expect(l.check(h, { pid: 650, uid: 1000, ancestors: [600] }, T0).status).toBe('issued-here'); // its parent
    // two services started by pid 1 are not related
    const svc: TokenHolder = { pid: 800, uid: 0, ancestors: [1] };
    issue(l, `${TOKEN}S`, 600, T0, svc);
    expect(l.check(hasher.token(`${TOKEN}S`), { pid: 900, uid: 0, ancestors: [1] }, T0).status).toBe(
      'other-caller',
    );
  });

  it('facts unknown on either side are not held against the caller', () => {
    const l = new TokenLedger();
    issue(l, TOKEN, 600, T0); // holder not known yet (attribution late)
    const h = hasher.token(TOKEN);
    expect(l.check(h, { pid: 1, uid: 5 }, T0).status).toBe('issued-here');
    l.attribute(h, agent);
    expect(l.check(h, { pid: 9999, uid: 0, ancestors: [1] }, T0).status).toBe('other-caller');
    expect(l.check(h, undefined, T0).status).toBe('issued-here');
    expect(l.check(h, { uid: 0 }, T0).status).toBe('issued-here');
    expect(l.check(h, { uid: 3 }, T0).status).toBe('other-caller');
    // attribute() never replaces a holder
    l.attribute(h, { pid: 9999 });
    expect(l.check(h, agent, T0).status).toBe('issued-here');
  });

  it('stays within maxEntries: expired entries go first, then the oldest; the prefixes follow', () => {
    const l = new TokenLedger(3);
    issue(l, 'AQAEA-first-token-000000', 10, T0);
    issue(l, 'AQAEA-second-token-00000', 600, T0);
    issue(l, 'AQAEA-third-token-000000', 600, T0);
    issue(l, 'AQAEA-fourth-token-00000', 600, T0 + 20_000); // the first has expired: it goes
    expect(l.size).toBe(3);
    expect(l.check(hasher.token('AQAEA-second-token-00000'), undefined, T0 + 20_000).status).toBe(
      'issued-here',
    );
    issue(l, 'AQAEA-fifth-token-000000', 600, T0 + 20_000); // none expired: the oldest (second) goes
    expect(l.size).toBe(3);
    expect(l.check(hasher.token('AQAEA-second-token-00000'), undefined, T0 + 20_000).status).toBe('unknown');
    expect(l.hasPrefix(hasher.prefix('AQAEA-second'))).toBe(false);
    expect(l.hasPrefix(hasher.prefix('AQAEA-fifth-'))).toBe(true);
  });

  it('counts changes in its generation', () => {
    const l = new TokenLedger();
    const g0 = l.generation;
    issue(l, TOKEN, 60, T0);
    expect(l.generation).toBeGreaterThan(g0);
    const g1 = l.generation;
    l.check(hasher.token(TOKEN), agent, T0);
    expect(l.generation).toBe(g1);
    expect(l.prune(T0 + 60_000)).toBe(1);
    expect(l.generation).toBeGreaterThan(g1);
  });
});

describe('holders from callers', () => {
  it('keeps identity facts only (no command line), the pod as namespace/name', () => {
    const c: Caller = {
      resolved: 'full',
      pid: 42,
      exe: '/usr/bin/curl',
      cmdline: ['curl', 'secret'],
      uid: 0,
      container: { id: 'abc', runtime: 'docker' },
      pod: { namespace: 'ns', name: 'web-1', hostNetwork: false, source: 'cgroup' },
      parents: [{ pid: 41 }, { pid: 1 }],
      netns: 'other',
    };
    expect(holderOf(c)).toEqual({
      pid: 42,
      exe: '/usr/bin/curl',
      uid: 0,
      container: 'abc',
      pod: 'ns/web-1',
      netns: 'other',
      ancestors: [41, 1],
    });
    expect(holderOf({ resolved: 'none', error: 'x' })).toBeUndefined();
    expect(holderOf(undefined)).toBeUndefined();
    expect(otherCallerReason({ container: 'a', pid: 1 }, { pid: 2 })).toMatch(
      /the host used a token issued to container a/,
    );
  });
});

describe('the state file', () => {
  it('round-trips entries and holds no token', () => {
    const l = new TokenLedger();
    issue(l, TOKEN, 600, T0, agent);
    const text = encodeLedger(hasher.keyId, l.entries());
    expect(text).not.toContain(TOKEN.slice(0, PREFIX_CHARS));
    const d = decodeLedger(text, hasher.keyId);
    expect(d).toEqual({ ok: true, entries: l.entries(), dropped: 0 });
  });

  it('refuses text that is not its own, and skips malformed entries', () => {
    expect(decodeLedger('{', hasher.keyId)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/not JSON/),
    });
    expect(decodeLedger('[]', hasher.keyId)).toMatchObject({ ok: false });
    expect(decodeLedger('{"v":2,"keyId":"x","entries":[]}', hasher.keyId)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/version/),
    });
    expect(decodeLedger(`{"v":1,"keyId":"other","entries":[]}`, hasher.keyId)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/another key/),
    });
    const good = {
      hash: 'A'.repeat(22),
      prefix: 'B'.repeat(22),
      fingerprint: 77,
      issuedAtMs: T0,
      expiresAtMs: T0 + 1,
    };
    const bad = [
      { ...good, hash: 'short' },
      { ...good, expiresAtMs: T0 - 1 },
      { ...good, holder: { pid: -1 } },
      { ...good, holder: { netns: 'x' } },
      { ...good, holder: { ancestors: [1, 2, 3, 4, 5, 6, 7, 8, 9] } },
      'x',
    ];
    const d = decodeLedger(
      JSON.stringify({ v: 1, keyId: hasher.keyId, entries: [good, ...bad] }),
      hasher.keyId,
    );
    expect(d).toEqual({ ok: true, entries: [good], dropped: bad.length });
  });

  it('restore skips expired and duplicate entries and respects the bound', () => {
    const l = new TokenLedger(2);
    const e = (n: number, exp: number) => ({
      hash: `${'h'.repeat(21)}${n}`,
      prefix: `${'p'.repeat(21)}${n}`,
      fingerprint: n,
      issuedAtMs: T0 + n,
      expiresAtMs: exp,
    });
    expect(
      l.restore(
        [e(1, T0 + 100), e(2, T0 + 10_000), e(3, T0 + 10_000), e(4, T0 + 10_000), e(4, T0 + 10_000)],
        T0 + 200,
      ),
    ).toBe(3);
    expect(l.size).toBe(2);
    expect(l.entries().map((x) => x.hash.slice(-1))).toEqual(['3', '4']);
  });
});

describe('rolling fingerprints', () => {
  it('sliding along a text gives each window the fingerprint computed directly', async () => {
    const { scanFingerprints } = await import('../../src/guard/tokens/keyed-hash.js');
    const text = `xx ${TOKEN} yy Ünïcode-${TOKEN.slice(3)}`;
    const seen: number[] = [];
    const want = new Set<number>();
    for (let i = 0; i + PREFIX_CHARS <= text.length; i++)
      want.add(hasher.fingerprint(text.slice(i, i + PREFIX_CHARS)));
    scanFingerprints(
      text,
      0,
      text.length,
      hasher,
      (f) => want.has(f),
      (start) => {
        seen.push(start);
        return false;
      },
    );
    expect(seen).toEqual(Array.from({ length: text.length - PREFIX_CHARS + 1 }, (_, i) => i));
    const target = hasher.fingerprint(TOKEN.slice(0, PREFIX_CHARS));
    const hits: number[] = [];
    scanFingerprints(
      text,
      0,
      text.length,
      hasher,
      (f) => f === target,
      (s) => {
        hits.push(s);
        return false;
      },
    );
    expect(hits).toEqual([3]);
  });
});
