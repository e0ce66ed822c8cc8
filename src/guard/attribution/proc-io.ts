import { open } from 'node:fs/promises';

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
