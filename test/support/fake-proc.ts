import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addressToKernelHex } from '../../src/guard/attribution/proc-parse.js';
import type { ConnectionInfo } from '../../src/guard/attribution/types.js';

/**
 * A fake /proc tree for the resolver's unit tests: every fact the resolver reports must come from
 * the tree, so each test changes one file and checks the answer follows.
 */

export const HOST_NS = 'net:[4026531840]';
export const CONTAINER_NS = 'net:[4026532999]';
export const DOCKER_ID = 'c'.repeat(64);

export interface FakeProc {
  pid: number;
  ppid: number;
  uid: number;
  exe?: string;
  cmdline?: string[];
  fds?: Record<number, string>;
  cgroup?: string;
  netns?: string;
  comm?: string;
}

export class FakeProcTree {
  readonly root: string;
  readonly passwd: string;
  constructor(dir: string) {
    this.root = join(dir, 'proc');
    this.passwd = join(dir, 'passwd');
    mkdirSync(join(this.root, 'net'), { recursive: true });
    mkdirSync(join(this.root, 'self', 'ns'), { recursive: true });
    symlinkSync(HOST_NS, join(this.root, 'self', 'ns', 'net'));
    writeFileSync(
      this.passwd,
      'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\n',
    );
    this.tables('', [], []);
  }

  /** Writes net/tcp and net/tcp6 (under PID/ when pid is given). Rows: [local, remote, state, uid, inode]. */
  tables(prefix: string, v4: Row[], v6: Row[]): void {
    const dir = join(this.root, prefix, 'net');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tcp'), tcpText(v4, false));
    writeFileSync(join(dir, 'tcp6'), tcpText(v6, true));
  }

  proc(p: FakeProc): void {
    const d = join(this.root, String(p.pid));
    mkdirSync(join(d, 'fd'), { recursive: true });
    mkdirSync(join(d, 'ns'), { recursive: true });
    if (p.exe) symlinkSync(p.exe, join(d, 'exe'));
    writeFileSync(join(d, 'cmdline'), (p.cmdline ?? [p.exe ?? 'x']).map((a) => `${a}\0`).join(''));
    writeFileSync(
      join(d, 'status'),
      `Name:\t${p.comm ?? 'x'}\nTgid:\t${p.pid}\nPid:\t${p.pid}\nPPid:\t${p.ppid}\nUid:\t${p.uid}\t${p.uid}\t${p.uid}\t${p.uid}\n`,
    );
    writeFileSync(
      join(d, 'stat'),
      `${p.pid} (${p.comm ?? 'x'}) S ${p.ppid} ${p.pid} ${p.pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n`,
    );
    writeFileSync(join(d, 'cgroup'), p.cgroup ?? '0::/\n');
    symlinkSync(p.netns ?? HOST_NS, join(d, 'ns', 'net'));
    for (const [fd, target] of Object.entries(p.fds ?? {})) symlinkSync(target, join(d, 'fd', fd));
  }

  remove(pid: number): void {
    rmSync(join(this.root, String(pid)), { recursive: true, force: true });
  }
}

export type Row = [local: string, remote: string, state: number, uid: number, inode: number];

function endpoint(addrPort: string, v6: boolean): string {
  const i = addrPort.lastIndexOf(':');
  const addr = addrPort.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(addrPort.slice(i + 1));
  const hex = addressToKernelHex(v6 && !addr.includes(':') ? `::ffff:${addr}` : addr, 'LE') as string;
  return `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

function tcpText(rows: Row[], v6: boolean): string {
  const header =
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
  return (
    header +
    rows
      .map(
        ([l, r, st, uid, inode], i) =>
          `${String(i).padStart(4)}: ${endpoint(l, v6)} ${endpoint(r, v6)} ${st.toString(16).toUpperCase().padStart(2, '0')} 00000000:00000000 00:00000000 00000000 ${String(uid).padStart(5)}        0 ${inode} 1 0000000000000000 20 4 30 10 -1\n`,
      )
      .join('')
  );
}

export function conn(
  remote: string,
  remotePort: number,
  family: 4 | 6 = 4,
  localPort = 8080,
): ConnectionInfo {
  return {
    family,
    remoteAddress: remote,
    remotePort,
    localAddress: family === 4 ? '127.0.0.1' : '::1',
    localPort,
  };
}
