import { asyncProcIo, type ProcIo } from './proc-io.js';
import { parsePasswd } from './proc-parse.js';

/** How often a miss may re-read the passwd file, milliseconds. */
const PASSWD_REFRESH_MS = 30_000;
/** Largest passwd file read, bytes. */
const PASSWD_MAX_BYTES = 16 * 1024 * 1024;

/** uid -> user name from the passwd file: parsed once, re-read on a miss at most every 30 s. */
export class UserNames {
  readonly #path: string;
  readonly #io: ProcIo;
  readonly #now: () => number;
  #names: Map<number, string> | undefined;
  #loadedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;

  /** inline: the caller's thread must not block (the file is read with async I/O whatever io is). */
  constructor(path: string, io: ProcIo, now: () => number, inline: boolean) {
    this.#path = path;
    // Off the inline tier's thread: /etc/passwd may be megabytes (read at most every 30 s).
    this.#io = inline ? asyncProcIo : io;
    this.#now = now;
  }

  async name(uid: number): Promise<string | undefined> {
    const have = this.#names?.get(uid);
    if (have !== undefined) return have;
    if (this.#now() - this.#loadedAt > PASSWD_REFRESH_MS) {
      this.#loading ??= this.#io
        .readAll(this.#path, PASSWD_MAX_BYTES)
        .then(
          (r) => {
            this.#names = parsePasswd(r.text);
          },
          () => {
            this.#names ??= new Map();
          },
        )
        .finally(() => {
          this.#loadedAt = this.#now();
          this.#loading = undefined;
        });
      await this.#loading;
    }
    return this.#names?.get(uid);
  }
}
