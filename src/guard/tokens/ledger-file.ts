import type { TokenHolder } from './holder.js';
import { MAX_ANCESTORS } from './holder.js';
import type { LedgerEntry } from './ledger.js';

/**
 * The ledger's state file, as text: a JSON object { v: 1, keyId, entries: [...] }. Pure: encode and
 * decode with validation; reading and writing the file is persist.ts's job. Nothing in it is a token.
 */

export const LEDGER_FILE_VERSION = 1;
/** Bytes one entry may take in the file, at most (a bound for the whole file: maxEntries times it). */
export const MAX_ENTRY_BYTES = 1024;

export function encodeLedger(keyId: string, entries: readonly LedgerEntry[]): string {
  return `${JSON.stringify({ v: LEDGER_FILE_VERSION, keyId, entries })}\n`;
}

export type DecodedLedger =
  | { ok: true; entries: LedgerEntry[]; dropped: number }
  | { ok: false; error: string };

/** Reads the file's text. A file of another key or version, or not JSON, is an error (start empty). */
export function decodeLedger(text: string, keyId: string): DecodedLedger {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not JSON (${(err as Error).message})` };
  }
  if (!isObject(data)) return { ok: false, error: 'not a JSON object' };
  if (data['v'] !== LEDGER_FILE_VERSION)
    return { ok: false, error: `unknown version ${JSON.stringify(data['v'])}` };
  if (data['keyId'] !== keyId)
    return {
      ok: false,
      error: 'written under another key (the key file was replaced): its hashes cannot be used',
    };
  const list = data['entries'];
  if (!Array.isArray(list)) return { ok: false, error: 'entries is not a list' };
  const entries: LedgerEntry[] = [];
  let dropped = 0;
  for (const item of list) {
    const e = entryOf(item);
    if (e) entries.push(e);
    else dropped++;
  }
  return { ok: true, entries, dropped };
}

const HASH = /^[A-Za-z0-9_-]{16,64}$/;

function entryOf(x: unknown): LedgerEntry | undefined {
  if (!isObject(x)) return undefined;
  const { hash, prefix, fingerprint, issuedAtMs, expiresAtMs, holder } = x;
  if (typeof hash !== 'string' || !HASH.test(hash)) return undefined;
  if (typeof prefix !== 'string' || !HASH.test(prefix)) return undefined;
  if (!isId(fingerprint)) return undefined;
  if (!isTime(issuedAtMs) || !isTime(expiresAtMs) || expiresAtMs < issuedAtMs) return undefined;
  const e: LedgerEntry = { hash, prefix, fingerprint, issuedAtMs, expiresAtMs };
  if (holder !== undefined) {
    const h = holderOfJson(holder);
    if (!h) return undefined;
    e.holder = h;
  }
  return e;
}

function holderOfJson(x: unknown): TokenHolder | undefined {
  if (!isObject(x)) return undefined;
  const h: TokenHolder = {};
  const { pid, startTime, exe, uid, container, pod, netns, ancestors } = x;
  if (pid !== undefined) {
    if (!isId(pid)) return undefined;
    h.pid = pid;
  }
  if (startTime !== undefined) {
    if (typeof startTime !== 'string' || !/^\d{1,20}$/.test(startTime)) return undefined;
    h.startTime = startTime;
  }
  if (exe !== undefined) {
    if (typeof exe !== 'string' || exe.length > 4096) return undefined;
    h.exe = exe;
  }
  if (uid !== undefined) {
    if (!isId(uid)) return undefined;
    h.uid = uid;
  }
  if (container !== undefined) {
    if (typeof container !== 'string' || container.length > 256) return undefined;
    h.container = container;
  }
  if (pod !== undefined) {
    if (typeof pod !== 'string' || pod.length > 512) return undefined;
    h.pod = pod;
  }
  if (netns !== undefined) {
    if (netns !== 'host' && netns !== 'other') return undefined;
    h.netns = netns;
  }
  if (ancestors !== undefined) {
    if (!Array.isArray(ancestors) || ancestors.length > MAX_ANCESTORS || !ancestors.every(isId))
      return undefined;
    h.ancestors = ancestors;
  }
  return h;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isTime(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function isId(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}
