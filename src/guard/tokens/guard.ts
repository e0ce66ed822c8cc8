import type { Caller } from '../attribution/types.js';
import { holderOf, type TokenHolder } from './holder.js';
import { type TokenKeys, tokenKeys } from './keyed-hash.js';
import { MAX_TTL_SECONDS, type TokenStatus } from './ledger.js';
import type { OpenLedger } from './persist.js';

/**
 * The ledger as the request path uses it: the token a request carries (its hash, never its value),
 * the token an upstream answer issues, and the token part of the request's event. No policy here
 * (verdict.ts) and no file (persist.ts).
 */

/** What an event says about the token its request carried or was answered with. */
export interface EventToken {
  status: TokenStatus;
  /** True on the token PUT whose answer issued this token. */
  issued?: true;
  /** Seconds the token has left (issued: the TTL the upstream answered). */
  ttlSeconds?: number;
  /** other-caller: who the token was issued to (no command line). */
  issuedTo?: Omit<TokenHolder, 'ancestors' | 'startTime'>;
  /** other-caller: why this caller is not the holder. */
  why?: string;
}

/** A token a request carries, hashed. */
export interface SeenToken {
  hash: string;
  /** Its status before the caller is known (issued-here here may become other-caller). */
  status: TokenStatus;
}

/** A token an upstream answer issued, kept in the ledger. */
export interface IssuedToken {
  keys: TokenKeys;
  ttlSeconds: number;
  /** Whether the holder is named yet. */
  attributed: boolean;
}

/** Longest token the guard hashes, characters (IMDS tokens are about 56). Longer ones are unknown. */
export const MAX_TOKEN_CHARS = 4096;

export class TokenGuard {
  readonly #l: OpenLedger;

  constructor(ledger: OpenLedger) {
    this.#l = ledger;
  }

  get ledger(): OpenLedger {
    return this.#l;
  }

  /** The token in a request's header (the flavour's token header, first copy), or undefined. */
  seen(value: string | undefined, nowMs: number): SeenToken | undefined {
    if (value === undefined || value.trim() === '') return undefined;
    if (value.length > MAX_TOKEN_CHARS) return { hash: '', status: 'unknown' };
    const hash = this.#l.hasher.token(value);
    return { hash, status: this.#l.ledger.check(hash, undefined, nowMs).status };
  }

  /**
   * A token PUT's successful answer: its body is the token, its TTL header (or the request's) the
   * lifetime. Kept in the ledger with its holder when known.
   */
  issued(
    body: Buffer,
    ttlHeader: string | undefined,
    requestTtl: string | undefined,
    caller: Caller | undefined,
    nowMs: number,
  ): IssuedToken | undefined {
    const token = body.toString('latin1');
    if (token.trim() === '' || token.length > MAX_TOKEN_CHARS) return undefined;
    const ttl = parseTtl(ttlHeader) ?? parseTtl(requestTtl) ?? MAX_TTL_SECONDS;
    const keys = tokenKeys(this.#l.hasher, token);
    const holder = holderOf(caller);
    this.#l.ledger.issue(keys, ttl, nowMs, holder);
    this.#l.changed();
    return { keys, ttlSeconds: Math.min(ttl, MAX_TTL_SECONDS), attributed: holder !== undefined };
  }

  /** The event's token part, once the caller is final (names the holder of a token issued before). */
  settle(
    seen: SeenToken | undefined,
    issued: IssuedToken | undefined,
    caller: Caller | undefined,
    startMs: number,
  ): EventToken | undefined {
    if (issued) {
      if (!issued.attributed) {
        const holder = holderOf(caller);
        if (holder) {
          this.#l.ledger.attribute(issued.keys.hash, holder);
          this.#l.changed();
        }
      }
      return { status: 'issued-here', issued: true, ttlSeconds: issued.ttlSeconds };
    }
    if (!seen) return undefined;
    if (seen.hash === '') return { status: 'unknown' };
    const v = this.#l.ledger.check(seen.hash, holderOf(caller), startMs);
    const out: EventToken = { status: v.status };
    if (v.ttlSeconds !== undefined) out.ttlSeconds = v.ttlSeconds;
    if (v.status === 'other-caller') {
      if (v.reason !== undefined) out.why = v.reason;
      if (v.holder) {
        const { ancestors: _a, startTime: _s, ...issuedTo } = v.holder;
        out.issuedTo = issuedTo;
      }
    }
    return out;
  }
}

function parseTtl(s: string | undefined): number | undefined {
  if (s === undefined || !/^\s*\d{1,6}\s*$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 ? n : undefined;
}
