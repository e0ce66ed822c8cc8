import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Session tokens (IMDSv2, Alibaba's hardened mode). Tokens are self-contained and signed: the
 * expiry and a random nonce, authenticated with an HMAC key that lives only in this process. Nothing
 * is stored per token, so memory stays bounded however many tokens clients ask for.
 */

const VERSION = Buffer.from([0x01, 0x00, 0x04, 0x00]); // base64 "AQAEA...", like real IMDSv2 tokens
const NONCE_BYTES = 16;
const MAC_BYTES = 16;
const TOKEN_BYTES = VERSION.length + 8 + NONCE_BYTES + MAC_BYTES;
/** Longest token header value we even try to decode (a real one is 60 characters). */
const MAX_TOKEN_CHARS = 256;

export type TokenCheck =
  | { ok: true; remainingSeconds: number }
  | { ok: false; reason: 'malformed' | 'invalid' | 'expired' };

export class TokenIssuer {
  private readonly key: Buffer;
  private readonly now: () => number;
  private readonly scope: string;

  /** `scope` separates token schemes (an AWS token is not valid as an Alibaba token). */
  constructor(now: () => number, scope: string, key: Buffer = randomBytes(32)) {
    this.now = now;
    this.scope = scope;
    this.key = key;
  }

  private mac(payload: Buffer): Buffer {
    return createHmac('sha256', this.key).update(this.scope).update(payload).digest().subarray(0, MAC_BYTES);
  }

  /** Issues a token valid for ttlSeconds from now. */
  issue(ttlSeconds: number): string {
    const payload = Buffer.alloc(VERSION.length + 8 + NONCE_BYTES);
    VERSION.copy(payload, 0);
    payload.writeBigUInt64BE(BigInt(this.now() + ttlSeconds * 1000), VERSION.length);
    randomBytes(NONCE_BYTES).copy(payload, VERSION.length + 8);
    return Buffer.concat([payload, this.mac(payload)]).toString('base64');
  }

  check(token: string): TokenCheck {
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9+/]+={0,2}$/.test(token)) {
      return { ok: false, reason: 'malformed' };
    }
    const raw = Buffer.from(token, 'base64');
    if (raw.length !== TOKEN_BYTES || !raw.subarray(0, VERSION.length).equals(VERSION)) {
      return { ok: false, reason: 'malformed' };
    }
    const payload = raw.subarray(0, TOKEN_BYTES - MAC_BYTES);
    if (!timingSafeEqual(this.mac(payload), raw.subarray(TOKEN_BYTES - MAC_BYTES))) {
      return { ok: false, reason: 'invalid' };
    }
    const expiresAt = Number(payload.readBigUInt64BE(VERSION.length));
    const left = expiresAt - this.now();
    if (left <= 0) return { ok: false, reason: 'expired' };
    return { ok: true, remainingSeconds: Math.ceil(left / 1000) };
  }
}

/**
 * Parses a TTL header value: an integer within [min, max], digits only. Returns undefined when the
 * header is missing, not an integer, or out of range (all three are a 400 on IMDS).
 */
export function parseTtl(value: string | string[] | undefined, min: number, max: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (!/^\d{1,6}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= min && n <= max ? n : undefined;
}
