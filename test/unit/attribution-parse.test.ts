import { describe, expect, it } from 'vitest';
import {
  addressToKernelHex,
  findRowsByLocal,
  ipToBytes,
  kernelHexToAddress,
  parseCmdline,
  parseExeLink,
  parseNsLink,
  parsePasswd,
  parseSocketLink,
  parseStat,
  parseStatus,
  parseTcpLine,
  parseTcpTable,
  pickClientRow,
  redactArgs,
  TCP_STATES,
  unmapIPv4,
} from '../../src/guard/attribution/proc-parse.js';

// Real lines captured from /proc/net/tcp and /proc/net/tcp6 on x86_64 (little-endian).
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1060 1 000000004e227847 100 0 0 10 0
   1: 0100007F:A5B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18912 1 000000009aa2a0b4 100 0 0 10 0
   2: 0100007F:CF54 0100007F:A5B3 01 00000000:00000000 00:00000000 00000000 65534        0 17937 2 0000000093d2dd92 20 0 0 10 -1
   3: 0100007F:A5B3 0100007F:CF54 01 00000000:00000000 00:00000000 00000000     0        0 18913 1 00000000bf19c160 20 0 0 10 -1
   4: 0100007F:CF60 0100007F:A5B3 06 00000000:00000000 03:0000176A 00000000     0        0 0 3 0000000045b3e0dc
   this line is garbage
`;

const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 22001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:C350 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 22002 1 0000000000000000 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:C351 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1002        0 22003 1 0000000000000000 20 4 30 10 -1
   3: B80D0120000000000000000001000000:D000 00000000000000000000000000000000:0000 01 00000000:00000000 00:00000000 00000000  1003        0 22004 1 0000000000000000 20 4 30 10 -1
`;

describe('tcp table lines', () => {
  it('parses an IPv4 row: addresses in host order, ports, state, uid, inode', () => {
    const row = parseTcpLine(
      '   2: 0100007F:CF54 0100007F:A5B3 01 00000000:00000000 00:00000000 00000000 65534        0 17937 2 0000000093d2dd92 20 0 0 10 -1',
    );
    expect(row).toEqual({
      localHex: '0100007F',
      localPort: 0xcf54,
      remoteHex: '0100007F',
      remotePort: 0xa5b3,
      state: TCP_STATES.ESTABLISHED,
      uid: 65534,
      inode: 17937,
    });
    expect(kernelHexToAddress('0100007F', 'LE')).toBe('127.0.0.1');
  });

  it('skips the header and garbage lines', () => {
    const rows = parseTcpTable(TCP);
    expect(rows).toHaveLength(5);
    expect(rows.map((r) => r.inode)).toEqual([1060, 18912, 17937, 18913, 0]);
    expect(parseTcpLine('  sl  local_address rem_address   st')).toBeUndefined();
    expect(parseTcpLine('   9: 0100007F:XYZ1 0100007F:A5B3 01 0 0 0 0 0 0')).toBeUndefined();
  });

  it('finds rows by the LOCAL endpoint only, never by the remote column', () => {
    // 127.0.0.1:A5B3 is the local side of rows 1 and 3 and the remote side of rows 2 and 4.
    const rows = findRowsByLocal(TCP, '0100007F', 0xa5b3);
    expect(rows.map((r) => r.inode)).toEqual([18912, 18913]);
    expect(findRowsByLocal(TCP, '0100007F', 0xcf54).map((r) => r.inode)).toEqual([17937]);
    expect(findRowsByLocal(TCP, '0100007F', 0x1234)).toEqual([]);
  });

  it('picks the connected socket over a listener and prefers the guard port', () => {
    const rows = findRowsByLocal(TCP, '0100007F', 0xa5b3);
    expect(pickClientRow(rows)?.inode).toBe(18913);
    const listenerOnly = rows.filter((r) => r.state === TCP_STATES.LISTEN);
    expect(pickClientRow(listenerOnly)).toBeUndefined();
    const timeWait = findRowsByLocal(TCP, '0100007F', 0xcf60);
    expect(pickClientRow(timeWait, 0xa5b3)?.state).toBe(TCP_STATES.TIME_WAIT);
  });

  it('parses tcp6 rows, including ::1 and IPv4-mapped addresses', () => {
    const rows = parseTcpTable(TCP6);
    expect(rows).toHaveLength(4);
    expect(kernelHexToAddress(rows[1]?.localHex ?? '', 'LE')).toBe('::1');
    expect(kernelHexToAddress(rows[2]?.localHex ?? '', 'LE')).toBe('::ffff:7f00:1');
    expect(kernelHexToAddress(rows[3]?.localHex ?? '', 'LE')).toBe('2001:db8::1');
    const hex = addressToKernelHex('::1', 'LE') as string;
    expect(hex).toBe('00000000000000000000000001000000');
    expect(findRowsByLocal(TCP6, hex, 0xc350).map((r) => r.uid)).toEqual([1001]);
    const mapped = addressToKernelHex('::ffff:127.0.0.1', 'LE') as string;
    expect(mapped).toBe('0000000000000000FFFF00000100007F');
    expect(findRowsByLocal(TCP6, mapped, 0xc351).map((r) => r.uid)).toEqual([1002]);
    expect(findRowsByLocal(TCP6, addressToKernelHex('2001:db8::1', 'LE') as string, 0xd000)).toHaveLength(1);
  });
});

describe('addresses', () => {
  it('encodes IPv4 in host byte order for both endiannesses', () => {
    expect(addressToKernelHex('127.0.0.1', 'LE')).toBe('0100007F');
    expect(addressToKernelHex('127.0.0.1', 'BE')).toBe('7F000001');
    expect(addressToKernelHex('169.254.169.254', 'LE')).toBe('FEA9FEA9');
    expect(addressToKernelHex('10.1.2.3', 'LE')).toBe('0302010A');
    expect(kernelHexToAddress('0302010A', 'LE')).toBe('10.1.2.3');
    expect(kernelHexToAddress('0A010203', 'BE')).toBe('10.1.2.3');
  });

  it('expands IPv6 forms: ::, embedded IPv4, zone ids', () => {
    expect(Array.from(ipToBytes('fd00:ec2::254') ?? [])).toEqual([
      0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54,
    ]);
    expect(Array.from(ipToBytes('::ffff:10.0.0.5') ?? []).slice(10)).toEqual([0xff, 0xff, 10, 0, 0, 5]);
    expect(Array.from(ipToBytes('fe80::1%eth0') ?? []).slice(0, 2)).toEqual([0xfe, 0x80]);
    expect(ipToBytes('not-an-ip')).toBeUndefined();
    expect(addressToKernelHex('fd00:ec2::254', 'LE')).toBe('C20E00FD000000000000000054020000');
    expect(kernelHexToAddress('C20E00FD000000000000000054020000', 'LE')).toBe('fd00:ec2::254');
  });

  it('recognizes IPv4-mapped IPv6 addresses', () => {
    expect(unmapIPv4('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(unmapIPv4('::FFFF:10.0.0.9')).toBe('10.0.0.9');
    expect(unmapIPv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(unmapIPv4('::1')).toBeUndefined();
    expect(unmapIPv4('127.0.0.1')).toBeUndefined();
  });
});

describe('stat, status, cmdline, links, passwd', () => {
  it('parses stat when comm holds spaces and parentheses', () => {
    const text =
      '4242 (evil) S 1 (x)) R 77 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n';
    const s = parseStat(text);
    expect(s).toEqual({ pid: 4242, comm: 'evil) S 1 (x)', state: 'R', ppid: 77, startTime: '98765' });
    expect(parseStat('garbage')).toBeUndefined();
  });

  it('parses status uids, ppid and the fd table size', () => {
    const s = parseStatus(
      'Name:\tcurl\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t900\nNgid:\t0\nPid:\t900\nPPid:\t12\nUid:\t1000\t1001\t1002\t1003\nGid:\t0\t0\t0\t0\nFDSize:\t64\n',
    );
    expect(s).toEqual({ name: 'curl', tgid: 900, ppid: 12, uids: [1000, 1001, 1002, 1003], fdSize: 64 });
  });

  it('bounds cmdline in count and length', () => {
    const long = 'x'.repeat(300);
    const args = parseCmdline(Buffer.from(`curl\0-s\0${long}\0a\0b\0c\0`), { maxArgs: 4, maxArgLength: 10 });
    expect(args).toEqual(['curl', '-s', `${'x'.repeat(10)}…`, 'a', '…(+2 args)']);
    expect(parseCmdline('', { maxArgs: 4, maxArgLength: 10 })).toEqual([]);
  });

  it('handles deleted executables, socket and namespace links', () => {
    expect(parseExeLink('/usr/bin/agent (deleted)')).toEqual({ exe: '/usr/bin/agent', deleted: true });
    expect(parseExeLink('/usr/bin/curl')).toEqual({ exe: '/usr/bin/curl', deleted: false });
    expect(parseSocketLink('socket:[123456]')).toBe(123456);
    expect(parseSocketLink('pipe:[123456]')).toBeUndefined();
    expect(parseSocketLink('/dev/null')).toBeUndefined();
    expect(parseNsLink('net:[4026531840]')).toBe('4026531840');
    expect(parseNsLink('mnt:[4026531840]')).toBeUndefined();
  });

  it('parses passwd, first entry wins, comments skipped', () => {
    const m = parsePasswd(
      'root:x:0:0:root:/root:/bin/bash\n# comment\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\nalias:x:0:0::/:/bin/sh\nbad line\n',
    );
    expect(m.get(0)).toBe('root');
    expect(m.get(65534)).toBe('nobody');
    expect(m.size).toBe(2);
  });
});

describe('secrets never reach the event through argv', () => {
  const limits = { maxArgs: 32, maxArgLength: 256 };
  it('redacts token and auth header values passed to curl', () => {
    const argv = [
      'curl',
      '-H',
      'X-aws-ec2-metadata-token: AQAEAFakeTokenValue==',
      '-H',
      'X-Meta-Auth: hunter2hunter2',
      '--header=Authorization: Bearer abc.def',
      'http://169.254.169.254/latest/meta-data/',
    ];
    const out = parseCmdline(`${argv.join('\0')}\0`, limits);
    expect(out).toEqual([
      'curl',
      '-H',
      'X-aws-ec2-metadata-token: [redacted]',
      '-H',
      'X-Meta-Auth: [redacted]',
      '--header=Authorization: [redacted]',
      'http://169.254.169.254/latest/meta-data/',
    ]);
    expect(out.join(' ')).not.toMatch(/AQAEAFake|hunter2|abc\.def/);
  });

  it('redacts --password VALUE, key=value, query strings and URL passwords', () => {
    expect(redactArgs(['app', '--password', 's3cret', '--api-key=abc123', 'x?token=t0k&y=1'])).toEqual([
      'app',
      '--password',
      '[redacted]',
      '--api-key=[redacted]',
      'x?token=[redacted]&y=1',
    ]);
    expect(redactArgs(['curl', 'http://user:pa55@example.com/x'])).toEqual([
      'curl',
      'http://user:[redacted]@example.com/x',
    ]);
    expect(redactArgs(['python3', '-c', "h={'X-aws-ec2-metadata-token': 'AQAEsecret'}"])[2]).not.toContain(
      'AQAEsecret',
    );
    // Ordinary arguments pass through.
    expect(redactArgs(['curl', '-s', 'http://169.254.169.254/latest/api/token', '-X', 'PUT'])).toEqual([
      'curl',
      '-s',
      'http://169.254.169.254/latest/api/token',
      '-X',
      'PUT',
    ]);
  });
});
