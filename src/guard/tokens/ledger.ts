import { otherCallerReason, type TokenHolder } from './holder.js';
import type { TokenKeys } from './keyed-hash.js';

/**
 * The token ledger: the tokens issued through the guard, by keyed hash, with their
 * expiry and the caller that asked for each. Pure: no clock (times come in), no file (the state file
 * is read and written by persist.ts), no crypto beyond the hashes handed in.
 *
 * A token a request carries is one of:
 *   issued-here   issued through this guard, not expired, used by its holder (or a relative, holder.ts);
 *   other-caller  issued here, used by another process, uid, container or pod: an alert (token theft);
 *   expired       issued here, past the TTL the upstream answered;
 *   unknown       never issued through this guard (forged, guessed, or from before the ledger).
 */

export const TOKEN_STATUSES = ['issued-here', 'unknown', 'expired', 'other-caller'] as const;
export type TokenStatus = (typeof TOKEN_STATUSES)[number];

export interface LedgerEntry {
  /** Keyed hash of the token (keyed-hash.ts). */
  hash: string;
  /** Keyed hash of its first PREFIX_CHARS characters (for redaction). */
  prefix: string;
  /** Rolling fingerprint of its first PREFIX_CHARS characters (redaction's filter). */
  fingerprint: number;
  issuedAtMs: number;
  expiresAtMs: number;
  /** The caller that asked for it; absent until (or unless) attribution names it. */
  holder?: TokenHolder;
}

export interface TokenVerdict {
  status: TokenStatus;
  /** Why, for other-caller. */
  reason?: string;
  /** The holder, for other-caller (pid, exe, uid, container: no command line). */
  holder?: TokenHolder;
  /** Seconds the token has left (issued-here, other-caller). */
  ttlSeconds?: number;
}

/** Most entries by default; past it the entries that expire first go. */
export const DEFAULT_MAX_ENTRIES = 10_000;
/** Longest TTL IMDS grants, seconds: an expiry beyond it is clipped. */
export const MAX_TTL_SECONDS = 21_600;

export class TokenLedger {
  readonly maxEntries: number;
  readonly #entries = new Map<string, LedgerEntry>();
  /** Prefix hash -> how many entries have it. */
  readonly #prefixes = new Map<string, number>();
  /** Fingerprint -> how many entries have it. */
  readonly #fingerprints = new Map<number, number>();
  #generation = 0;

  constructor(maxEntries = DEFAULT_MAX_ENTRIES) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new Error('maxEntries must be a positive integer');
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Changes with every entry added or removed (callers cache redaction results by it). */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Records a token the upstream just issued. ttlSeconds is what the upstream answered (clipped to
   * 1..MAX_TTL_SECONDS). Returns the entry, whose holder may be set later (attribute()).
   */
  issue(keys: TokenKeys, ttlSeconds: number, nowMs: number, holder?: TokenHolder): LedgerEntry {
    const ttl = Math.min(Math.max(Math.floor(ttlSeconds), 1), MAX_TTL_SECONDS);
    this.#remove(keys.hash);
    const entry: LedgerEntry = {
      hash: keys.hash,
      prefix: keys.prefix,
      fingerprint: keys.fingerprint,
      issuedAtMs: nowMs,
      expiresAtMs: nowMs + ttl * 1000,
    };
    if (holder) entry.holder = holder;
    this.#makeRoom(nowMs);
    this.#add(entry);
    return entry;
  }

  /** Names the caller a token was issued to (once attribution answered). */
  attribute(hash: string, holder: TokenHolder): void {
    const e = this.#entries.get(hash);
    if (e && !e.holder) {
      e.holder = holder;
      this.#generation++;
    }
  }

  /** Judges a token a request carries (by its hash), for the caller that sent it. */
  check(hash: string, caller: TokenHolder | undefined, nowMs: number): TokenVerdict {
    const e = this.#entries.get(hash);
    if (!e) return { status: 'unknown' };
    if (nowMs >= e.expiresAtMs) return { status: 'expired' };
    const ttlSeconds = Math.ceil((e.expiresAtMs - nowMs) / 1000);
    const reason = e.holder && caller ? otherCallerReason(e.holder, caller) : undefined;
    if (reason !== undefined) return { status: 'other-caller', reason, holder: e.holder, ttlSeconds };
    return { status: 'issued-here', ttlSeconds };
  }

  /** True when some token in the ledger starts with a piece of this prefix hash. */
  hasPrefix(prefixHash: string): boolean {
    return this.#prefixes.has(prefixHash);
  }

  /** True when some token in the ledger has this prefix fingerprint. */
  hasFingerprint(fingerprint: number): boolean {
    return this.#fingerprints.has(fingerprint);
  }

  /** Drops expired entries; returns how many went. */
  prune(nowMs: number): number {
    let n = 0;
    for (const e of [...this.#entries.values()]) {
      if (nowMs >= e.expiresAtMs) {
        this.#remove(e.hash);
        n++;
      }
    }
    return n;
  }

  /** The entries, oldest first (what persist.ts writes). */
  entries(): LedgerEntry[] {
    return [...this.#entries.values()];
  }

  /** Adds entries read back from the state file (already validated), skipping expired ones. */
  restore(entries: readonly LedgerEntry[], nowMs: number): number {
    let n = 0;
    for (const e of [...entries].sort((a, b) => a.issuedAtMs - b.issuedAtMs)) {
      if (nowMs >= e.expiresAtMs || this.#entries.has(e.hash)) continue;
      this.#makeRoom(nowMs);
      this.#add(e);
      n++;
    }
    return n;
  }

  #makeRoom(nowMs: number): void {
    if (this.#entries.size < this.maxEntries) return;
    this.prune(nowMs);
    while (this.#entries.size >= this.maxEntries) {
      // the oldest issued goes first (a Map keeps insertion order)
      const first = this.#entries.keys().next();
      if (first.done) break;
      this.#remove(first.value);
    }
  }

  #add(e: LedgerEntry): void {
    this.#entries.set(e.hash, e);
    count(this.#prefixes, e.prefix, 1);
    count(this.#fingerprints, e.fingerprint, 1);
    this.#generation++;
  }

  #remove(hash: string): void {
    const e = this.#entries.get(hash);
    if (!e) return;
    this.#entries.delete(hash);
    count(this.#prefixes, e.prefix, -1);
    count(this.#fingerprints, e.fingerprint, -1);
    this.#generation++;
  }
}

function count<K>(m: Map<K, number>, k: K, by: 1 | -1): void {
  const n = (m.get(k) ?? 0) + by;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
