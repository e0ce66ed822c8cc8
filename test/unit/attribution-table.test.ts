import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TableScan } from '../../src/guard/attribution/table-scan.js';
import { waitFor } from '../support/wait.js';

/** The shared, early-stopping read of /proc/net/tcp, against a big fake table. */

const dir = mkdtempSync(join(tmpdir(), 'imdsg-table-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function row(i: number, localPort: number, state: number, uid: number, inode: number): string {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  return `${String(i).padStart(4)}: 0100007F:${hex(localPort)} 0100007F:1F90 ${state.toString(16).toUpperCase().padStart(2, '0')} 00000000:00000000 00:00000000 00000000 ${String(uid).padStart(5)}        0 ${inode} 1 0000000000000000 20 4 30 10 -1\n`;
}

/** 3000 TIME_WAIT rows (ports 20000..22999) with live rows for ports 1001 (early) and 30001 (last). */
function bigTable(): string {
  let t =
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
  t += row(0, 1001, 1, 1000, 5001);
  for (let i = 0; i < 3000; i++) t += row(i + 1, 20000 + i, 6, 0, 0);
  // An old TIME_WAIT row on the same port as the live one below: the live one must win.
  t += row(3001, 30001, 6, 0, 0);
  t += row(3002, 30001, 1, 1001, 5002);
  return t;
}

const path = join(dir, 'tcp');
writeFileSync(path, bigTable());

describe('TableScan', () => {
  it('stops reading once every waiter found a live row', async () => {
    const scan = new TableScan(path, 0, 64 * 1024 * 1024, 4096);
    const rows = await scan.find('0100007F', 1001);
    expect(rows.map((r) => r.inode)).toEqual([5001]);
    await waitFor(() => scan.finished, 'the scan to stop');
    expect(scan.complete).toBe(false);
  });

  it('reads on past TIME_WAIT rows to the live row, and shares one read between waiters', async () => {
    const scan = new TableScan(path, 0, 64 * 1024 * 1024, 4096);
    const [late, early, missing] = await Promise.all([
      scan.find('0100007F', 30001),
      scan.find('0100007F', 1001),
      scan.find('0100007F', 44444),
    ]);
    expect(late.map((r) => [r.state, r.inode])).toEqual([
      [6, 0],
      [1, 5002],
    ]);
    expect(early.map((r) => r.inode)).toEqual([5001]);
    expect(missing).toEqual([]);
    expect(scan.complete).toBe(true);
    // A late joiner of a complete scan searches the text already read.
    expect((await scan.find('0100007F', 20005)).map((r) => r.state)).toEqual([6]);
  });

  it('a line split across reads is still found', async () => {
    // 150-byte rows and 1000-byte reads: most rows straddle a boundary.
    const scan = new TableScan(path, 0, 64 * 1024 * 1024, 1000);
    expect((await scan.find('0100007F', 30001)).some((r) => r.inode === 5002)).toBe(true);
  });

  it('is bounded by maxBytes, and a missing file is an empty table', async () => {
    const capped = new TableScan(path, 0, 8192, 4096);
    expect(await capped.find('0100007F', 30001)).toEqual([]);
    expect(capped.complete).toBe(false);
    const none = new TableScan(join(dir, 'nope'), 0, 8192);
    expect(await none.find('0100007F', 1001)).toEqual([]);
  });
});
