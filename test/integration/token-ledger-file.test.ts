import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tokenKeys } from '../../src/guard/tokens/keyed-hash.js';
import { KEY_FILE, LEDGER_FILE, openTokenLedger } from '../../src/guard/tokens/persist.js';

/**
 * The ledger's state file on a real file system: it survives a restart, is written atomically with
 * mode 0600, and a corrupt, foreign or unreadable file is a warning and an empty ledger, never a crash.
 */

const TOKEN = 'AQAEAPersistedTokenValue-0123456789abcdefghijklmnopqrstu==';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'imdsg-ledger-'));
  dirs.push(d);
  return join(d, 'state');
}

describe('the token ledger in the state directory', () => {
  it('survives a restart: a token issued before is still issued-here, with its holder', async () => {
    const dir = stateDir();
    const logs: string[] = [];
    const a = await openTokenLedger({ stateDir: dir, maxEntries: 100, log: (m) => logs.push(m) });
    const keys = tokenKeys(a.hasher, TOKEN);
    a.ledger.issue(keys, 21_600, Date.now(), { pid: 10, uid: 0, ancestors: [1] });
    a.changed();
    await a.close();
    const file = join(dir, LEDGER_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).not.toContain(TOKEN.slice(0, 12));

    const b = await openTokenLedger({ stateDir: dir, maxEntries: 100, log: (m) => logs.push(m) });
    const h = b.hasher.token(TOKEN);
    expect(h).toBe(keys.hash);
    expect(b.ledger.check(h, { pid: 10, uid: 0 }, Date.now()).status).toBe('issued-here');
    expect(b.ledger.check(h, { pid: 11, uid: 0, ancestors: [1] }, Date.now()).status).toBe('other-caller');
    await b.close();
    expect(logs).toEqual([]);
  });

  it('writes changes made after open, coalesced, and flush() puts them on disk', async () => {
    const dir = stateDir();
    const a = await openTokenLedger({ stateDir: dir, maxEntries: 100, log: () => {} });
    for (let i = 0; i < 20; i++) {
      a.ledger.issue(tokenKeys(a.hasher, `${TOKEN}${i}`), 60, Date.now());
      a.changed();
    }
    await a.flush();
    const data = JSON.parse(readFileSync(join(dir, LEDGER_FILE), 'utf8')) as { entries: unknown[] };
    expect(data.entries).toHaveLength(20);
    await a.close();
  });

  it.each([
    ['not JSON', '{"v":1,"keyId":'],
    ['binary garbage', '\u0000\u0001\u00ff'],
    ['another version', '{"v":9,"keyId":"x","entries":[]}'],
  ])('a corrupt ledger file (%s) is a warning, set aside, and an empty ledger', async (_n, text) => {
    const dir = stateDir();
    const first = await openTokenLedger({ stateDir: dir, maxEntries: 10, log: () => {} });
    await first.close();
    writeFileSync(join(dir, LEDGER_FILE), text);
    const logs: string[] = [];
    const l = await openTokenLedger({ stateDir: dir, maxEntries: 10, log: (m) => logs.push(m) });
    expect(l.ledger.size).toBe(0);
    expect(logs.join('\n')).toMatch(/token ledger: .*token-ledger\.json is unusable: .*starting empty/);
    expect(readFileSync(join(dir, `${LEDGER_FILE}.corrupt`), 'utf8')).toBe(text);
    // and it goes on working: a new token is kept
    l.ledger.issue(tokenKeys(l.hasher, TOKEN), 60, Date.now());
    l.changed();
    await l.close();
    const again = await openTokenLedger({ stateDir: dir, maxEntries: 10, log: () => {} });
    expect(again.ledger.size).toBe(1);
    await again.close();
  });

  it('a ledger written under another key is not used (its hashes mean nothing)', async () => {
    const dir = stateDir();
    const a = await openTokenLedger({ stateDir: dir, maxEntries: 10, log: () => {} });
    a.ledger.issue(tokenKeys(a.hasher, TOKEN), 60, Date.now());
    a.changed();
    await a.close();
    rmSync(join(dir, KEY_FILE));
    const logs: string[] = [];
    const b = await openTokenLedger({ stateDir: dir, maxEntries: 10, log: (m) => logs.push(m) });
    expect(b.ledger.size).toBe(0);
    expect(logs.join('\n')).toMatch(/another key/);
    await b.close();
  });

  it('a corrupt key is replaced, with a warning', async () => {
    const dir = stateDir();
    await (await openTokenLedger({ stateDir: dir, maxEntries: 10, log: () => {} })).close();
    writeFileSync(join(dir, KEY_FILE), 'short');
    const logs: string[] = [];
    const b = await openTokenLedger({ stateDir: dir, maxEntries: 10, log: (m) => logs.push(m) });
    expect(logs.join('\n')).toMatch(/key .* is corrupt/);
    expect(Buffer.from(readFileSync(join(dir, KEY_FILE), 'utf8').trim(), 'base64')).toHaveLength(32);
    await b.close();
  });

  it('a file bigger than the bound is not read', async () => {
    const dir = stateDir();
    await (await openTokenLedger({ stateDir: dir, maxEntries: 1, log: () => {} })).close();
    writeFileSync(join(dir, LEDGER_FILE), 'x'.repeat(10_000));
    const logs: string[] = [];
    const b = await openTokenLedger({ stateDir: dir, maxEntries: 1, log: (m) => logs.push(m) });
    expect(b.ledger.size).toBe(0);
    expect(logs.join('\n')).toMatch(/more than \d+ .*starting empty/);
    await b.close();
  });

  it('an unreadable key keeps the ledger in memory, with a warning', async () => {
    const dir = stateDir();
    // a directory where the key should be: unreadable for root too (EISDIR)
    mkdirSync(join(dir, KEY_FILE), { recursive: true });
    const logs: string[] = [];
    const b = await openTokenLedger({ stateDir: dir, maxEntries: 10, log: (m) => logs.push(m) });
    expect(logs.join('\n')).toMatch(/cannot read its key .*EISDIR.*in memory only/);
    expect(b.file).toBeUndefined();
    b.ledger.issue(tokenKeys(b.hasher, TOKEN), 60, Date.now());
    b.changed();
    await b.close();
  });

  it('a ledger file that cannot be written is a warning, kept in memory and retried', async () => {
    const dir = stateDir();
    const logs: string[] = [];
    const a = await openTokenLedger({ stateDir: dir, maxEntries: 10, log: (m) => logs.push(m) });
    mkdirSync(join(dir, LEDGER_FILE)); // rename onto a directory fails
    a.ledger.issue(tokenKeys(a.hasher, TOKEN), 60, Date.now());
    a.changed();
    await a.flush();
    expect(logs.join('\n')).toMatch(/cannot write .*token-ledger\.json.*kept in memory and retried/);
    expect(a.ledger.size).toBe(1);
    await a.close();
    expect(logs).toHaveLength(1); // the same error is said once
  });

  it('without a state directory the ledger is in memory', async () => {
    const l = await openTokenLedger({ maxEntries: 10, log: () => {} });
    expect(l.file).toBeUndefined();
    l.ledger.issue(tokenKeys(l.hasher, TOKEN), 60, Date.now());
    expect(l.ledger.check(l.hasher.token(TOKEN), undefined, Date.now()).status).toBe('issued-here');
    await l.close();
  });
});
