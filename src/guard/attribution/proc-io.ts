import { closeSync, existsSync, openSync, readdirSync, readlinkSync, readSync, statSync } from 'node:fs';
import { open, readdir, readlink, stat } from 'node:fs/promises';

/**
 * Bounded async reads of /proc files. fs.readFile is avoided on purpose: it stats first and grows
 * its buffer, which costs extra thread-pool round trips and has no size bound.
 */

/**
 * One read of at most maxBytes. Right for /proc files that the kernel generates in one record
 * (stat, status, cgroup, cmdline): a single read returns all of it when the buffer is large enough.
 */
export async function readOnce(path: string, maxBytes: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(maxBytes);
    const { bytesRead } = await fh.read(buf, 0, maxBytes, null);
    return buf.subarray(0, bytesRead);
  } finally {
    // Not awaited: the caller has its bytes; closing is one thread-pool round trip it need not wait for.
    fh.close().catch(() => {});
  }
}

/**
 * The kernel's seq_file returns at most one buffer (a page, 4 KiB or more) per read, and stops early
 * only at the end of the table. So a read that returns well under 4 KiB, and under what was asked, ends
 * the file: skipping the read that would return 0 saves a thread-pool round trip.
 */
const SEQ_EOF_BELOW = 4096 - 512;

/** Reads until EOF or maxBytes (multi-record files such as /proc/net/tcp). */
export async function readAll(
  path: string,
  maxBytes: number,
  chunkBytes = 256 * 1024,
): Promise<{ text: string; truncated: boolean }> {
  const fh = await open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(chunkBytes, maxBytes - total);
      if (want <= 0) return { text: Buffer.concat(chunks).toString('latin1'), truncated: true };
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (bytesRead < SEQ_EOF_BELOW && bytesRead < want) break;
    }
    return { text: Buffer.concat(chunks).toString('latin1'), truncated: false };
  } finally {
    fh.close().catch(() => {});
  }
}

/**
 * The /proc operations the resolver makes, as promises. Two implementations:
 *
 * - asyncProcIo: libuv's thread pool, for a resolver on the guard's main thread, which must never
 *   block (each call is a thread-pool round trip, 20 to 100 us on a busy host);
 * - syncProcIo: plain system calls (a few microseconds each), for the resolver on its own worker
 *   thread (threaded.ts), where blocking blocks nothing else. Its promises are already settled.
 */
export interface ProcIo {
  readdir(path: string): Promise<string[]>;
  /** The names of the directories in a directory (cgroup trees: their control files are left out). */
  subdirs(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
  /** uid and size (the size of /proc/PID/fd is its fd count on Linux 6.2+). */
  stat(path: string): Promise<{ uid: number; size: number }>;
  readOnce(path: string, maxBytes: number): Promise<Buffer>;
  readAll(path: string, maxBytes: number): Promise<{ text: string; truncated: boolean }>;
  /**
   * Whether a path exists, without the cost of a failed call (an exception with its stack: tens of
   * microseconds for a process that has just exited). Synchronous I/O only.
   */
  exists?(path: string): boolean;
  /**
   * Opens a file to read again and again from its start, without opening it each time (a sysctl
   * such as ns_last_pid is generated anew on every read). Synchronous I/O only.
   */
  reread?(path: string, maxBytes: number): RereadFile;
}

/** A file kept open by ProcIo.reread. `read` returns a view of a reused buffer: parse it at once. */
export interface RereadFile {
  read(): Buffer;
  close(): void;
}

export const asyncProcIo: ProcIo = {
  readdir: (path) => readdir(path),
  subdirs: async (path) =>
    (await readdir(path, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name),
  readlink: (path) => readlink(path),
  stat: (path) => stat(path),
  readOnce,
  readAll: (path, maxBytes) => readAll(path, maxBytes),
};

/** Runs a synchronous call and returns its outcome as a settled promise. */
function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * One scratch buffer for synchronous reads (nothing else runs during one), so a read allocates only
 * the bytes it returns: a /proc file is a few hundred bytes, and a fresh 16 KiB buffer per read is
 * garbage the collector must chase on every lookup. Reads larger than this get their own buffer.
 */
const scratch = Buffer.allocUnsafe(16 * 1024);

function readOnceSync(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = maxBytes <= scratch.length ? scratch : Buffer.allocUnsafe(maxBytes);
    const n = readSync(fd, buf, 0, maxBytes, null);
    return buf === scratch ? Buffer.from(scratch.subarray(0, n)) : buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function readAllSync(path: string, maxBytes: number): { text: string; truncated: boolean } {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(256 * 1024, maxBytes - total);
      if (want <= 0) return { text: Buffer.concat(chunks).toString('latin1'), truncated: true };
      const buf = Buffer.allocUnsafe(want);
      const n = readSync(fd, buf, 0, want, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
    }
    return { text: Buffer.concat(chunks).toString('latin1'), truncated: false };
  } finally {
    closeSync(fd);
  }
}

export const syncProcIo: ProcIo = {
  readdir: (path) => settled(() => readdirSync(path)),
  subdirs: (path) =>
    settled(() =>
      readdirSync(path, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name),
    ),
  readlink: (path) => settled(() => readlinkSync(path)),
  stat: (path) => settled(() => statSync(path)),
  readOnce: (path, maxBytes) => settled(() => readOnceSync(path, maxBytes)),
  readAll: (path, maxBytes) => settled(() => readAllSync(path, maxBytes)),
  exists: (path) => existsSync(path),
  reread: (path, maxBytes) => {
    const fd = openSync(path, 'r');
    const buf = Buffer.allocUnsafe(maxBytes);
    return {
      read: () => buf.subarray(0, readSync(fd, buf, 0, maxBytes, 0)),
      close: () => closeSync(fd),
    };
  },
};

/** A short, human-readable reason for a failed /proc access ("permission denied", "no such process"). */
export function describeFsError(err: unknown): string {
  const code = (err as { code?: string } | null)?.code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOENT':
    case 'ESRCH':
      return 'process gone';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files';
    default:
      return code ?? (err instanceof Error ? err.message : String(err));
  }
}

export function isGone(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ENOENT' || code === 'ESRCH';
}

export function isDenied(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'EACCES' || code === 'EPERM';
}
