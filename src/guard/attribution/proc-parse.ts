import { isIPv4, isIPv6 } from 'node:net';

/**
 * PURE parsers for the /proc text formats the resolver reads. No I/O here: every function takes the
 * text (or a value) and returns a result, so the unit tests run them against fixture text.
 */

export type Endianness = 'LE' | 'BE';

/** TCP states as /proc/net/tcp prints them (include/net/tcp_states.h). */
export const TCP_STATES = {
  ESTABLISHED: 0x01,
  SYN_SENT: 0x02,
  SYN_RECV: 0x03,
  FIN_WAIT1: 0x04,
  FIN_WAIT2: 0x05,
  TIME_WAIT: 0x06,
  CLOSE: 0x07,
  CLOSE_WAIT: 0x08,
  LAST_ACK: 0x09,
  LISTEN: 0x0a,
  CLOSING: 0x0b,
} as const;

/**
 * Whether a socket's uid tells nothing: the kernel turns a closed connection into a small "timewait"
 * socket, in TIME_WAIT or (orphaned, waiting for the peer's FIN) FIN_WAIT2, and reports uid 0 and
 * inode 0 for it whoever owned it. Claiming root for such a row would be wrong (and a `user: root`
 * rule could match it). An orphaned FIN_WAIT2 socket that still has its uid keeps it.
 */
export function uidUnknown(row: { state: number; uid: number; inode: number }): boolean {
  return (
    row.state === TCP_STATES.TIME_WAIT ||
    (row.state === TCP_STATES.FIN_WAIT2 && row.inode === 0 && row.uid === 0)
  );
}

export interface TcpRow {
  /** Local address as the kernel prints it (hex, host byte order per 32-bit word) and port. */
  localHex: string;
  localPort: number;
  remoteHex: string;
  remotePort: number;
  state: number;
  uid: number;
  /** Socket inode; 0 once the socket has no owner (closed, orphaned, TIME_WAIT). */
  inode: number;
}

/** Parses one data line of /proc/net/tcp or /proc/net/tcp6. Returns undefined for headers and junk. */
export function parseTcpLine(line: string): TcpRow | undefined {
  const f = line.trim().split(/\s+/);
  if (f.length < 10 || !/^\d+:$/.test(f[0] ?? '')) return undefined;
  const local = splitHexEndpoint(f[1]);
  const remote = splitHexEndpoint(f[2]);
  const state = Number.parseInt(f[3] ?? '', 16);
  const uid = Number(f[7]);
  const inode = Number(f[9]);
  if (!local || !remote || !Number.isInteger(state) || !Number.isInteger(uid) || !Number.isInteger(inode)) {
    return undefined;
  }
  return {
    localHex: local.hex,
    localPort: local.port,
    remoteHex: remote.hex,
    remotePort: remote.port,
    state,
    uid,
    inode,
  };
}

function splitHexEndpoint(s: string | undefined): { hex: string; port: number } | undefined {
  if (!s) return undefined;
  const m = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(s);
  if (!m) return undefined;
  return { hex: (m[1] as string).toUpperCase(), port: Number.parseInt(m[2] as string, 16) };
}

/** Parses a whole table; bad lines are skipped. */
export function parseTcpTable(text: string): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const line of text.split('\n')) {
    const row = parseTcpLine(line);
    if (row) rows.push(row);
  }
  return rows;
}

/**
 * Finds the rows whose LOCAL endpoint is hex:port without parsing the whole table: the local column
 * is the only one preceded by ": " (after the slot number), so a substring search is exact.
 */
export function findRowsByLocal(text: string, hex: string, port: number): TcpRow[] {
  const needle = `: ${hex}:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  const rows: TcpRow[] = [];
  let at = text.indexOf(needle);
  while (at !== -1) {
    const start = text.lastIndexOf('\n', at) + 1;
    let end = text.indexOf('\n', at);
    if (end === -1) end = text.length;
    const row = parseTcpLine(text.slice(start, end));
    if (row) rows.push(row);
    at = text.indexOf(needle, end);
  }
  return rows;
}

/**
 * Picks the client's socket among rows sharing its local endpoint: a connected socket (not LISTEN),
 * preferring ESTABLISHED, then one whose remote port is the guard's port, then one with an owner.
 */
export function pickClientRow(rows: readonly TcpRow[], guardPort?: number): TcpRow | undefined {
  let best: TcpRow | undefined;
  let bestScore = -1;
  for (const r of rows) {
    if (r.state === TCP_STATES.LISTEN) continue;
    const score =
      (r.state === TCP_STATES.ESTABLISHED ? 4 : 0) +
      (guardPort !== undefined && r.remotePort === guardPort ? 2 : 0) +
      (r.inode !== 0 ? 1 : 0);
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}

/** Parses an IPv4 or IPv6 literal (zone id stripped) into its 4 or 16 network-order bytes. */
export function ipToBytes(address: string): Uint8Array | undefined {
  const addr = address.replace(/%.*$/, '');
  if (isIPv4(addr)) return Uint8Array.from(addr.split('.').map(Number));
  if (!isIPv6(addr)) return undefined;
  let head = addr;
  let tailV4: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4) {
    tailV4 = (v4[1] as string).split('.').map(Number);
    head = addr.slice(0, addr.length - (v4[1] as string).length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const groupsNeeded = 8 - tailV4.length / 2;
  const [left = '', right] = head.split('::');
  const l = left === '' ? [] : left.split(':');
  const r = right === undefined || right === '' ? [] : right.split(':');
  const fill = right === undefined ? 0 : groupsNeeded - l.length - r.length;
  const groups = [...l, ...Array<string>(Math.max(0, fill)).fill('0'), ...r];
  if (groups.length !== groupsNeeded) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    bytes[i * 2] = (v >> 8) & 0xff;
    bytes[i * 2 + 1] = v & 0xff;
  });
  tailV4.forEach((b, i) => {
    bytes[12 + i] = b;
  });
  return bytes;
}

/** If address is an IPv4-mapped IPv6 address (::ffff:a.b.c.d), returns a.b.c.d. */
export function unmapIPv4(address: string): string | undefined {
  const b = ipToBytes(address);
  if (b?.length !== 16) return undefined;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return undefined;
  if (b[10] !== 0xff || b[11] !== 0xff) return undefined;
  return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
}

/** Whether an address is loopback (127/8, ::1, or IPv4-mapped 127/8): it never crosses namespaces. */
export function isLoopback(address: string): boolean {
  const v4 = unmapIPv4(address) ?? address;
  return v4.startsWith('127.') || v4 === '::1';
}

/** The kernel's hex for an address: each 32-bit word printed with %08X in host byte order. */
export function addressToKernelHex(address: string, endianness: Endianness): string | undefined {
  const b = ipToBytes(address);
  if (!b) return undefined;
  let out = '';
  for (let w = 0; w < b.length; w += 4) {
    const word =
      endianness === 'LE' ? [b[w + 3], b[w + 2], b[w + 1], b[w]] : [b[w], b[w + 1], b[w + 2], b[w + 3]];
    for (const byte of word) out += (byte as number).toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** The inverse of addressToKernelHex, for logs and tests. */
export function kernelHexToAddress(hex: string, endianness: Endianness): string | undefined {
  if (!/^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32})$/.test(hex)) return undefined;
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(endianness === 'LE' ? word.reverse() : word));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  return compressIPv6(groups);
}

function compressIPv6(groups: string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  const left = groups.slice(0, bestStart).join(':');
  const right = groups.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

export interface StatInfo {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** Start time in clock ticks after boot (field 22): with the pid, identifies a process. */
  startTime: string;
}

/** Parses /proc/PID/stat. comm may hold spaces and parentheses: it ends at the LAST ')'. */
export function parseStat(text: string): StatInfo | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const ppid = Number(rest[1]);
  const startTime = rest[19];
  if (!Number.isInteger(pid) || !Number.isInteger(ppid) || rest[0] === undefined || startTime === undefined) {
    return undefined;
  }
  return { pid, comm: text.slice(open + 1, close), state: rest[0], ppid, startTime };
}

export interface StatusInfo {
  name?: string;
  tgid?: number;
  ppid?: number;
  /** Real, effective, saved and filesystem uid. */
  uids?: [number, number, number, number];
  /** FDSize: the size of the fd table, an upper bound of the open fds. */
  fdSize?: number;
}

/** Parses the fields of /proc/PID/status the resolver uses. */
export function parseStatus(text: string): StatusInfo {
  // Only the lines wanted are cut out (status has about 55): a lookup parses one per new process.
  const out: StatusInfo = {};
  const field = (key: string): string | undefined => {
    const at = text.startsWith(`${key}:`) ? 0 : text.indexOf(`\n${key}:`);
    if (at < 0) return undefined;
    const start = at + key.length + (at === 0 ? 1 : 2);
    const end = text.indexOf('\n', start);
    return text.slice(start, end < 0 ? text.length : end).trim();
  };
  const name = field('Name');
  if (name !== undefined) out.name = name;
  const tgid = field('Tgid');
  if (tgid !== undefined) out.tgid = toInt(tgid);
  const ppid = field('PPid');
  if (ppid !== undefined) out.ppid = toInt(ppid);
  const uid = field('Uid');
  if (uid !== undefined) {
    const u = uid.split(/\s+/).map(Number);
    if (u.length === 4 && u.every((n) => Number.isInteger(n)))
      out.uids = u as [number, number, number, number];
  }
  const fdSize = field('FDSize');
  if (fdSize !== undefined) out.fdSize = toInt(fdSize);
  return out;
}

function toInt(s: string): number | undefined {
  return /^\d+$/.test(s) ? Number(s) : undefined;
}

export interface CmdlineLimits {
  /** Most arguments kept. */
  maxArgs: number;
  /** Longest argument kept, in characters; longer ones end in "…". */
  maxArgLength: number;
}

/** Names that mark a secret: a header, an option or a variable whose value must not be logged. */
const SECRET_NAME = /(token|auth|secret|passw|pwd|key|cookie|credential|signature|session)/i;
export const REDACTED = '[redacted]';
/** "name: value" inside a longer argument (--header=..., code): a header value runs to the end. */
const EMBEDDED_HEADER =
  /([A-Za-z0-9_.-]*(?:token|auth|secret|passw|pwd|key|cookie|credential|signature|session)[A-Za-z0-9_.-]*['"]?)(\s*:\s*)(?!\[redacted\]).+$/i;
/** "name=value" inside a longer argument (a query string, --opt=value): the value ends at a delimiter. */
const EMBEDDED_ASSIGN =
  /([A-Za-z0-9_.-]*(?:token|auth|secret|passw|pwd|key|cookie|credential|signature|session)[A-Za-z0-9_.-]*)(=)(?!\[redacted\])[^\s&;,'"}]+/gi;

/**
 * Redacts secrets from argv before it goes into an event: values of "Name: value" or "name=value"
 * arguments whose name looks secret (an IMDSv2 token header passed to curl -H, the guard's own
 * X-Meta-Auth, Authorization, --password=...), the argument after such an option (--token VALUE),
 * and passwords in URLs (scheme://user:pass@host).
 */
export function redactArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  let redactNext = false;
  for (const a of args) {
    if (redactNext) {
      out.push(REDACTED);
      redactNext = false;
      continue;
    }
    const header = /^([A-Za-z0-9_.-]+)(\s*[:=]\s*)(.+)$/s.exec(a);
    if (header && SECRET_NAME.test(header[1] as string)) {
      out.push(`${header[1]}${header[2]}${REDACTED}`);
      continue;
    }
    const option = /^--?([A-Za-z0-9][A-Za-z0-9_-]*)$/.exec(a);
    if (option && SECRET_NAME.test(option[1] as string)) redactNext = true;
    out.push(
      a
        .replace(EMBEDDED_HEADER, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`)
        .replace(EMBEDDED_ASSIGN, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`)
        .replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*):[^@/\s]*@/i, `$1:${REDACTED}@`),
    );
  }
  return out;
}

/** Splits /proc/PID/cmdline (NUL-separated) into bounded argv, secrets redacted. */
export function parseCmdline(buf: Buffer | string, limits: CmdlineLimits): string[] {
  const text = typeof buf === 'string' ? buf : buf.toString('utf8');
  const parts = text.split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  const args = redactArgs(parts.slice(0, limits.maxArgs)).map((a) =>
    a.length > limits.maxArgLength ? `${a.slice(0, limits.maxArgLength)}…` : a,
  );
  if (parts.length > limits.maxArgs) args.push(`…(+${parts.length - limits.maxArgs} args)`);
  return args;
}

/** readlink of /proc/PID/exe: strips the " (deleted)" suffix the kernel adds for a replaced binary. */
export function parseExeLink(target: string): { exe: string; deleted: boolean } {
  const suffix = ' (deleted)';
  if (target.endsWith(suffix)) return { exe: target.slice(0, -suffix.length), deleted: true };
  return { exe: target, deleted: false };
}

/** "socket:[12345]" -> 12345; anything else -> undefined. */
export function parseSocketLink(target: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(target);
  return m ? Number(m[1]) : undefined;
}

/** Parses /etc/passwd into uid -> name (first entry wins), at most maxEntries. */
export function parsePasswd(text: string, maxEntries = 65_536): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (out.size >= maxEntries) break;
    if (line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const f = line.split(':');
    if (f.length < 4 || !f[0]) continue;
    const uid = Number(f[2]);
    if (!Number.isInteger(uid) || uid < 0 || f[2] === '') continue;
    if (!out.has(uid)) out.set(uid, f[0]);
  }
  return out;
}

/** "net:[4026531840]" -> "4026531840"; anything else -> undefined. */
export function parseNsLink(target: string): string | undefined {
  const m = /^net:\[(\d+)\]$/.exec(target);
  return m ? m[1] : undefined;
}
