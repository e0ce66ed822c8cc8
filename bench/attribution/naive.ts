import { readdirSync, readlinkSync } from 'node:fs';
import { readdir, readlink } from 'node:fs/promises';
import { readAll } from '../../src/guard/attribution/proc-io.js';
import {
  addressToKernelHex,
  findRowsByLocal,
  pickClientRow,
  unmapIPv4,
} from '../../src/guard/attribution/proc-parse.js';
import type { ConnectionInfo } from '../../src/guard/attribution/types.js';

/**
 * The baseline: what metatrapd does on every request. Find the socket inode in /proc/net/tcp, then
 * walk EVERY /proc/PID/fd and readlink every fd (the whole table, as a full scan does; stopping at
 * the first match would make the cost depend on where the client's pid happens to sort, which
 * changes when pids wrap). The socket row is found exactly as the resolver finds it, so the
 * comparison measures the inode -> pid step.
 */

async function inodeOf(conn: ConnectionInfo): Promise<number | undefined> {
  const v4 = unmapIPv4(conn.remoteAddress) ?? conn.remoteAddress;
  const hex = addressToKernelHex(v4, 'LE');
  if (!hex) return undefined;
  const { text } = await readAll(v4.includes(':') ? '/proc/net/tcp6' : '/proc/net/tcp', 64 * 1024 * 1024);
  return pickClientRow(findRowsByLocal(text, hex, conn.remotePort), conn.localPort)?.inode;
}

/** Async full scan, readlinks 16 at a time (the same I/O primitive and batching as the resolver). */
export async function naiveResolveAsync(conn: ConnectionInfo): Promise<number | undefined> {
  const inode = await inodeOf(conn);
  if (!inode) return undefined;
  const want = `socket:[${inode}]`;
  let found: number | undefined;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (let i = 0; i < fds.length; i += 16) {
      const links = await Promise.all(
        fds.slice(i, i + 16).map((fd) => readlink(`/proc/${name}/fd/${fd}`).catch(() => '')),
      );
      if (found === undefined && links.includes(want)) found = Number(name);
    }
  }
  return found;
}

/** Synchronous full scan: no thread-pool round trips, but it blocks the event loop throughout. */
export async function naiveResolveSync(conn: ConnectionInfo): Promise<number | undefined> {
  const inode = await inodeOf(conn);
  if (!inode) return undefined;
  const want = `socket:[${inode}]`;
  let found: number | undefined;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (found === undefined && readlinkSync(`/proc/${name}/fd/${fd}`) === want) found = Number(name);
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return found;
}
