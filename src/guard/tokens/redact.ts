import { PREFIX_CHARS, scanFingerprints, type TokenHasher } from './keyed-hash.js';

/**
 * Redaction by value: the guard knows its secret and every token it issued (by the
 * keyed hash of each token's first PREFIX_CHARS characters), so it finds those values in any text it
 * is about to write, whatever the syntax around them: a curl -H, a multi-line python3 -c, a
 * PowerShell @{...}, a Ruby hash, shell assignments, a bare argument, JSON. A value cut short by an
 * argument bound is still found while PREFIX_CHARS of it are left. No plaintext token list is kept:
 * candidate pieces are hashed and looked up.
 *
 * Redaction by shape (secret-looking names and the configured secret header's name, followed by a
 * value) covers what the guard cannot know by value: tokens issued before the ledger, other
 * passwords. Pure: the hash function and the ledger's lookup come in.
 */

export const REDACTED = '[redacted]';
/** Longest command line kept in an event, characters (all arguments, after redaction). */
export const MAX_CMDLINE_CHARS = 4096;
/** Characters a token is made of (standard and URL-safe base64, and the separators JWTs use). */
const TOKEN_CHAR = /[A-Za-z0-9+/=_.-]/;
/** Shortest cut-off end of the secret that is still redacted, characters. */
const MIN_SECRET_TAIL = 4;

export interface KnownValues {
  /** Exact secret values (the guard's auth secret). */
  secrets: readonly string[];
  /** Header or variable names whose values are secret besides the usual ones (the auth header). */
  secretNames: readonly string[];
  /** The ledger's hashes and lookups (undefined: no ledger). */
  tokens?: {
    hasher: Pick<TokenHasher, 'prefix' | 'base' | 'basePow'>;
    /** Whether a token in the ledger has this prefix fingerprint (the cheap filter). */
    hasFingerprint: (fingerprint: number) => boolean;
    /** Whether a token in the ledger starts with the piece of this prefix hash. */
    hasPrefix: (hash: string) => boolean;
    /** False when the ledger is empty: nothing is scanned. */
    any: () => boolean;
  };
}

/** Names that mark a secret value. */
const SECRET_WORDS = 'token|auth|secret|pass|pwd|key|cookie|credential|signature|session|bearer';

export class Redactor {
  readonly #secrets: readonly string[];
  /** Every PREFIX_CHARS-long piece of each secret that is at least that long. */
  readonly #secretPieces = new Set<string>();
  readonly #known: KnownValues;
  readonly #shape: RegExp;
  readonly #nameOnly: RegExp;
  readonly #headerLine: RegExp;

  constructor(known: KnownValues) {
    this.#known = known;
    this.#secrets = known.secrets.filter((s) => s.length > 0);
    for (const s of this.#secrets)
      for (let i = 0; i + PREFIX_CHARS <= s.length; i++) this.#secretPieces.add(s.slice(i, i + PREFIX_CHARS));
    const extra = known.secretNames.map(escapeRegExp);
    const name = `[A-Za-z0-9_.:-]*(?:${[SECRET_WORDS, ...extra].join('|')})[A-Za-z0-9_.-]*`;
    // NAME, optionally quoted (Ruby :"name", PowerShell "name"), a separator (: = => := ,), then a
    // quoted value or a bare one up to a delimiter
    this.#shape = new RegExp(
      `(:?["']?${name}["']?)(\\s*(?:=>|:=|:|=|,)\\s*)(?:(["'])((?:(?!\\3)[^\\\\\\n…]|\\\\.)*)(\\3|(?=[\\n…]|$))|(?![=>[])([^\\s"',;&})\\]]+))`,
      'gi',
    );
    // a header line, "Name: value with spaces": the value runs to the end of the line
    this.#headerLine = new RegExp(`^(\\s*${name})(\\s*:[ \\t]*)(?!\\[redacted\\]$)(\\S.*)$`, 'gim');
    this.#nameOnly = new RegExp(`^-{0,2}${name}:?$`, 'i');
  }

  /** A text with every known value (the secret, a ledger token) replaced by REDACTED. */
  values(s: string): string {
    return this.#byValue(s);
  }

  /** A text with every known value and every secret-shaped value replaced by REDACTED. */
  text(s: string): string {
    return this.#byShape(this.#byValue(s));
  }

  /**
   * A command line for an event: each argument redacted (by value, by shape, and the argument after
   * a bare secret name such as `-H X-Guard-Pass VALUE` or `--token VALUE`), then bounded to
   * MAX_CMDLINE_CHARS in all.
   */
  cmdline(args: readonly string[]): string[] {
    const out: string[] = [];
    let redactNext = false;
    for (const a of bound(args)) {
      let r = this.#byValue(a);
      if (redactNext && r !== REDACTED) r = REDACTED;
      redactNext = this.#nameOnly.test(a) && a !== REDACTED;
      out.push(this.#byShape(r));
    }
    return out;
  }

  #byValue(s: string): string {
    const marks: Array<[number, number]> = [];
    for (const secret of this.#secrets) {
      if (secret.length < PREFIX_CHARS) {
        for (let at = s.indexOf(secret); at >= 0; at = s.indexOf(secret, at + 1))
          marks.push([at, at + secret.length]);
      }
      // the secret's first characters at the end of a cut-off argument ("…" or the end)
      const end = s.endsWith('…') ? s.length - 1 : s.length;
      for (let k = Math.min(secret.length, end); k >= MIN_SECRET_TAIL; k--) {
        if (s.startsWith(secret.slice(0, k), end - k)) {
          marks.push([end - k, end]);
          break;
        }
      }
    }
    if (this.#secretPieces.size > 0) {
      for (let i = 0; i + PREFIX_CHARS <= s.length; i++)
        if (this.#secretPieces.has(s.slice(i, i + PREFIX_CHARS))) marks.push([i, i + PREFIX_CHARS]);
    }
    const t = this.#known.tokens;
    if (t?.any()) {
      for (const [start, stop] of runs(s)) {
        scanFingerprints(s, start, stop, t.hasher, t.hasFingerprint, (i) => {
          if (!t.hasPrefix(t.hasher.prefix(s.slice(i, i + PREFIX_CHARS)))) return false;
          marks.push([i, stop]);
          return true;
        });
      }
    }
    return marks.length === 0 ? s : replaceMarks(s, marks);
  }

  #byShape(s: string): string {
    return s
      .replace(this.#headerLine, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`)
      .replace(
        this.#shape,
        (
          m: string,
          name: string,
          sep: string,
          quote?: string,
          quoted?: string,
          close?: string,
          bare?: string,
        ) => {
          // a quoted value (its closing quote may be cut off by an argument bound), or a bare one
          if (quote !== undefined)
            return `${name}${sep}${quote}${quoted === REDACTED ? quoted : REDACTED}${close ?? ''}`;
          if (bare !== undefined) return `${name}${sep}${REDACTED}`;
          return m;
        },
      );
  }
}

/** The arguments up to MAX_CMDLINE_CHARS in all: the one that crosses it is cut ("…"), a note says how many are left out. */
function bound(args: readonly string[]): readonly string[] {
  let total = 0;
  for (const [i, a] of args.entries()) {
    if (total + a.length <= MAX_CMDLINE_CHARS) {
      total += a.length;
      continue;
    }
    const room = MAX_CMDLINE_CHARS - total;
    const out = args.slice(0, i);
    if (room > 0) out.push(`${a.slice(0, room)}…`);
    const left = args.length - i - (room > 0 ? 1 : 0);
    if (left > 0) out.push(`…(+${left} args)`);
    return out;
  }
  return args;
}

/** Runs of token characters at least PREFIX_CHARS long, as [start, end). */
function runs(s: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = -1;
  for (let i = 0; i <= s.length; i++) {
    const inRun = i < s.length && TOKEN_CHAR.test(s[i] as string);
    if (inRun && start < 0) start = i;
    else if (!inRun && start >= 0) {
      if (i - start >= PREFIX_CHARS) out.push([start, i]);
      start = -1;
    }
  }
  return out;
}

/** Replaces the union of the marked ranges with one REDACTED each. */
function replaceMarks(s: string, marks: Array<[number, number]>): string {
  marks.sort((a, b) => a[0] - b[0]);
  let out = '';
  let at = 0;
  let open: [number, number] | undefined;
  for (const m of marks) {
    if (open && m[0] <= open[1]) {
      open[1] = Math.max(open[1], m[1]);
      continue;
    }
    if (open) {
      out += s.slice(at, open[0]) + REDACTED;
      at = open[1];
    }
    open = [m[0], m[1]];
  }
  if (open) {
    out += s.slice(at, open[0]) + REDACTED;
    at = open[1];
  }
  return out + s.slice(at);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
