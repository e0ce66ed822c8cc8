import { createHmac } from 'node:crypto';

/**
 * The ledger's keyed hashes: HMAC-SHA-256 under a per-install random key, cut to 128 bits. The
 * ledger keeps these, never a token: a hash without the key says nothing about the token, and the key
 * stays in the state directory (mode 0600) beside the ledger file.
 *
 * Two hashes per token, with domain separation: the whole token (what a request's token is looked up
 * by) and its first PREFIX_CHARS characters (what redaction looks for in a command line, where a
 * token may be cut short by an argument bound).
 */

/** Length of the token prefix whose hash redaction looks for, characters. */
export const PREFIX_CHARS = 12;
/** Length of the key, bytes. */
export const KEY_BYTES = 32;

export interface TokenHasher {
  /** The hash of a whole token. */
  token(value: string): string;
  /** The hash of a PREFIX_CHARS-long piece (the first characters of a token, or a candidate). */
  prefix(piece: string): string;
  /**
   * A 32-bit rolling fingerprint of a PREFIX_CHARS-long piece (a polynomial hash with a base derived
   * from the key): redaction slides it along a text in O(1) a character, and hashes a piece with
   * prefix() only when its fingerprint is a token's. A filter, not a proof.
   */
  fingerprint(piece: string): number;
  /** The fingerprint's base (odd) and base^(PREFIX_CHARS-1), for rolling it along a text. */
  readonly base: number;
  readonly basePow: number;
  /** A fingerprint of the key itself, stored in the ledger file so a file from another key is known. */
  readonly keyId: string;
}

export function tokenHasher(key: Buffer): TokenHasher {
  if (key.length < 16) throw new Error('the token ledger key must be at least 16 bytes');
  const mac = (domain: string, value: string): string =>
    createHmac('sha256', key)
      .update(domain)
      .update('\0')
      .update(value, 'utf8')
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  const base = (createHmac('sha256', key).update('rolling-base').digest().readUInt32BE(0) | 1) >>> 0;
  let basePow = 1;
  for (let i = 1; i < PREFIX_CHARS; i++) basePow = Math.imul(basePow, base) >>> 0;
  return {
    token: (value) => mac('token', value),
    prefix: (piece) => mac('prefix', piece),
    fingerprint: (piece) => {
      let h = 0;
      for (let i = 0; i < piece.length; i++) h = (Math.imul(h, base) + piece.charCodeAt(i)) >>> 0;
      return h;
    },
    base,
    basePow,
    keyId: mac('key-id', 'imdsguard token ledger'),
  };
}

/** What the ledger keeps of a token: its hash, its prefix's hash and its prefix's fingerprint. */
export interface TokenKeys {
  hash: string;
  prefix: string;
  fingerprint: number;
}

export function tokenKeys(hasher: TokenHasher, token: string): TokenKeys {
  const piece = token.slice(0, PREFIX_CHARS);
  return { hash: hasher.token(token), prefix: hasher.prefix(piece), fingerprint: hasher.fingerprint(piece) };
}

/** Calls visit(start) for each PREFIX_CHARS-long window of s[from, to) whose fingerprint is in the set. */
export function scanFingerprints(
  s: string,
  from: number,
  to: number,
  hasher: Pick<TokenHasher, 'base' | 'basePow'>,
  has: (fingerprint: number) => boolean,
  visit: (start: number) => boolean,
): void {
  if (to - from < PREFIX_CHARS) return;
  const { base, basePow } = hasher;
  let h = 0;
  for (let i = from; i < from + PREFIX_CHARS; i++) h = (Math.imul(h, base) + s.charCodeAt(i)) >>> 0;
  for (let start = from; ; start++) {
    if (has(h) && visit(start)) return;
    const next = start + PREFIX_CHARS;
    if (next >= to) return;
    h = (Math.imul((h - Math.imul(s.charCodeAt(start), basePow)) | 0, base) + s.charCodeAt(next)) >>> 0;
  }
}
