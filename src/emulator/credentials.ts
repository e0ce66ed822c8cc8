import { randomBytes, randomInt } from 'node:crypto';

/**
 * Fake but realistic-looking temporary credentials that rotate before they expire, as EC2 does:
 * a set is valid for `lifetimeMs` and is replaced by a new one once `rotateAfterMs` has passed, so a
 * client that refreshes on time never holds expired keys. The clock is injected for tests.
 */

export interface CredentialSet {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  /** ms since the epoch. */
  readonly lastUpdated: number;
  /** ms since the epoch. */
  readonly expiration: number;
}

export interface CredentialRotatorOptions {
  now: () => number;
  lifetimeMs: number;
  rotateAfterMs: number;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function randomFrom(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** A new random set: ASIA + 16 base32 characters, a 40-character secret, a long session token. */
export function generateCredentials(now: number, lifetimeMs: number): CredentialSet {
  return {
    accessKeyId: `ASIA${randomFrom(BASE32, 16)}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    // Real session tokens start with IQoJb3JpZ2luX2Vj ("\x21\n\tupdated origin_ec") and are ~1 KB.
    sessionToken: `IQoJb3JpZ2luX2Vj${randomBytes(576).toString('base64')}`,
    lastUpdated: now,
    expiration: now + lifetimeMs,
  };
}

/** Where a flavour gets the credentials it serves: the rotator, or the trap's honey credentials. */
export interface CredentialSource {
  get(): CredentialSet;
}

export class CredentialRotator implements CredentialSource {
  private current: CredentialSet | undefined;
  private rotations = 0;

  private readonly options: CredentialRotatorOptions;

  constructor(options: CredentialRotatorOptions) {
    this.options = options;
    if (!(options.rotateAfterMs > 0 && options.rotateAfterMs < options.lifetimeMs)) {
      throw new RangeError('rotateAfterMs must be positive and below lifetimeMs');
    }
  }

  /** The set to serve now: rotates when the current one is due (or when the clock went backwards). */
  get(): CredentialSet {
    const now = this.options.now();
    const cur = this.current;
    if (cur === undefined || now >= cur.lastUpdated + this.options.rotateAfterMs || now < cur.lastUpdated) {
      return this.rotate();
    }
    return cur;
  }

  /** Replaces the current set at once (the admin endpoint's POST /rotate). */
  rotate(): CredentialSet {
    this.current = generateCredentials(this.options.now(), this.options.lifetimeMs);
    this.rotations++;
    return this.current;
  }

  /** How many sets were issued so far (for the admin endpoint and tests). */
  get count(): number {
    return this.rotations;
  }
}

/** ISO 8601 in UTC without milliseconds, as IMDS writes it: 2026-01-15T15:30:00Z. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The body of /latest/meta-data/iam/security-credentials/ROLE. */
export function awsCredentialsDocument(set: CredentialSet): string {
  return JSON.stringify(
    {
      Code: 'Success',
      LastUpdated: isoSeconds(set.lastUpdated),
      Type: 'AWS-HMAC',
      AccessKeyId: set.accessKeyId,
      SecretAccessKey: set.secretAccessKey,
      Token: set.sessionToken,
      Expiration: isoSeconds(set.expiration),
    },
    null,
    2,
  );
}
