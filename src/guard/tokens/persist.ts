import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KEY_BYTES, type TokenHasher, tokenHasher } from './keyed-hash.js';
import { TokenLedger } from './ledger.js';
import { decodeLedger, encodeLedger, MAX_ENTRY_BYTES } from './ledger-file.js';

/**
 * The ledger's edge: its key and its file in the guard's state directory. Both are written
 * atomically (a temporary file, fsync, rename) with mode 0600. A missing, unreadable or corrupt file
 * is a warning and an empty ledger, never a crash: the guard then judges older tokens `unknown`.
 * Writes are coalesced: at most one every WRITE_INTERVAL_MS, and one at close.
 */

export const KEY_FILE = 'token-ledger.key';
export const LEDGER_FILE = 'token-ledger.json';
/** Least time between two writes of the ledger file, ms. */
export const WRITE_INTERVAL_MS = 1000;

export interface TokenLedgerOptions {
  /** The state directory; undefined: the ledger lives in memory only (a restart forgets it). */
  stateDir?: string;
  maxEntries: number;
  log: (message: string) => void;
  now?: () => number;
}

export interface OpenLedger {
  ledger: TokenLedger;
  hasher: TokenHasher;
  /** Where the ledger is kept, or undefined in memory. */
  file?: string;
  /** Call after every change: schedules a (coalesced) write. */
  changed(): void;
  /** Writes what changed now; resolves when it is on disk. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function openTokenLedger(o: TokenLedgerOptions): Promise<OpenLedger> {
  const now = o.now ?? Date.now;
  const ledger = new TokenLedger(o.maxEntries);
  const dir = o.stateDir;
  if (dir === undefined) return memoryLedger(o.maxEntries);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    o.log(
      `token ledger: cannot create the state directory ${dir} (${describe(err)}): the ledger is kept in memory only`,
    );
    return inMemory(ledger, tokenHasher(randomBytes(KEY_BYTES)));
  }
  const key = await loadKey(join(dir, KEY_FILE), o.log);
  if (!key) return inMemory(ledger, tokenHasher(randomBytes(KEY_BYTES)));
  const hasher = tokenHasher(key);
  const file = join(dir, LEDGER_FILE);
  await loadEntries(file, hasher.keyId, ledger, now(), o.log);
  return new LedgerWriter(ledger, hasher, file, o.log).handle();
}

/** A ledger kept in memory only, under a fresh key (a restart forgets it). */
export function memoryLedger(maxEntries: number): OpenLedger {
  return inMemory(new TokenLedger(maxEntries), tokenHasher(randomBytes(KEY_BYTES)));
}

function inMemory(ledger: TokenLedger, hasher: TokenHasher): OpenLedger {
  return { ledger, hasher, changed: () => {}, flush: async () => {}, close: async () => {} };
}

/** The key: read it, or make one when there is none. undefined: neither worked (warned). */
async function loadKey(path: string, log: (m: string) => void): Promise<Buffer | undefined> {
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      log(`token ledger: cannot read its key ${path} (${describe(err)}): the ledger is kept in memory only`);
      return undefined;
    }
  }
  if (text !== undefined) {
    const key = Buffer.from(text.trim(), 'base64');
    if (key.length === KEY_BYTES && key.toString('base64') === text.trim()) return key;
    log(
      `token ledger: its key ${path} is corrupt (moved to ${path}.corrupt): a new key is made, earlier tokens are unknown`,
    );
    await rename(path, `${path}.corrupt`).catch(() => {});
  }
  const key = randomBytes(KEY_BYTES);
  try {
    await writeAtomically(path, `${key.toString('base64')}\n`);
    return key;
  } catch (err) {
    log(`token ledger: cannot write its key ${path} (${describe(err)}): the ledger is kept in memory only`);
    return undefined;
  }
}

async function loadEntries(
  file: string,
  keyId: string,
  ledger: TokenLedger,
  nowMs: number,
  log: (m: string) => void,
): Promise<void> {
  const limit = ledger.maxEntries * MAX_ENTRY_BYTES + 4096;
  let text: string;
  try {
    const st = await stat(file);
    if (st.size > limit) {
      log(
        `token ledger: ${file} is ${st.size} bytes, more than ${limit} (moved to ${file}.corrupt): starting empty`,
      );
      await rename(file, `${file}.corrupt`).catch(() => {});
      return;
    }
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    log(
      `token ledger: cannot read ${file} (${describe(err)}): starting empty; tokens issued before are unknown`,
    );
    return;
  }
  const decoded = decodeLedger(text, keyId);
  if (!decoded.ok) {
    log(`token ledger: ${file} is unusable: ${decoded.error} (moved to ${file}.corrupt): starting empty`);
    await rename(file, `${file}.corrupt`).catch(() => {});
    return;
  }
  ledger.restore(decoded.entries, nowMs);
  if (decoded.dropped > 0) log(`token ledger: ${decoded.dropped} malformed entries in ${file} were skipped`);
}

class LedgerWriter {
  readonly #ledger: TokenLedger;
  readonly #hasher: TokenHasher;
  readonly #file: string;
  readonly #log: (m: string) => void;
  #written = -1;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #lastError = '';
  #lastWriteMs = 0;
  #closed = false;

  constructor(ledger: TokenLedger, hasher: TokenHasher, file: string, log: (m: string) => void) {
    this.#ledger = ledger;
    this.#hasher = hasher;
    this.#file = file;
    this.#log = log;
    this.#written = ledger.generation;
  }

  handle(): OpenLedger {
    return {
      ledger: this.#ledger,
      hasher: this.#hasher,
      file: this.#file,
      changed: () => this.#schedule(),
      flush: () => this.#flush(),
      close: async () => {
        this.#closed = true;
        if (this.#timer) clearTimeout(this.#timer);
        this.#timer = undefined;
        await this.#flush();
      },
    };
  }

  #schedule(): void {
    if (this.#closed || this.#timer || this.#ledger.generation === this.#written) return;
    const wait = Math.max(0, this.#lastWriteMs + WRITE_INTERVAL_MS - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#flush();
    }, wait);
    this.#timer.unref();
  }

  async #flush(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (this.#ledger.generation === this.#written) return;
    const generation = this.#ledger.generation;
    const text = encodeLedger(this.#hasher.keyId, this.#ledger.entries());
    this.#writing = writeAtomically(this.#file, text).then(
      () => {
        this.#written = generation;
        this.#lastError = '';
      },
      (err: unknown) => {
        const message = describe(err);
        if (message !== this.#lastError)
          this.#log(
            `token ledger: cannot write ${this.#file} (${message}); it is kept in memory and retried`,
          );
        this.#lastError = message;
      },
    );
    try {
      await this.#writing;
    } finally {
      this.#writing = undefined;
      this.#lastWriteMs = Date.now();
    }
    if (!this.#closed && this.#ledger.generation !== this.#written) this.#schedule();
  }
}

/** Writes a file whole or not at all: a temporary file beside it, fsync, rename. Mode 0600. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? e?.message ?? String(err);
}
