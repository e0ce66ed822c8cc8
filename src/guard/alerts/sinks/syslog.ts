import * as dgram from 'node:dgram';
import { isIP } from 'node:net';
import { SYSLOG_FACILITIES, type SyslogFacility } from '../../../config/alerts.js';
import { ImdsguardError } from '../../../errors.js';
import { loadNativeAddon, type NativeAddon } from '../../../native/addon.js';
import type { Alert } from '../alert.js';
import { type AlertSink, SinkError } from './types.js';

const SEVERITY_CODE: Record<Alert['severity'], number> = { critical: 2, warning: 4, notice: 5, info: 6 };

/** Structured-data id: 32473 is the private enterprise number reserved for documentation (RFC 5612). */
export const SD_ID = 'imdsguard@32473';

/** How long a send waits in all for a busy unix socket, milliseconds. */
const UNIX_BUSY_WAIT_MS = 2000;

/** Alerts per send() call; each alert is one datagram. */
export const SYSLOG_MAX_BATCH = 50;

function headerField(s: string | undefined, max: number): string {
  if (s === undefined || s === '') return '-';
  const printable = s.replace(/[^\x21-\x7e]/g, '_');
  return printable.slice(0, max);
}

/** SD-PARAM value escaping (RFC 5424 section 6.3.3): ", \ and ] are escaped with a backslash. */
export function sdEscape(s: string): string {
  return s.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

function truncateUtf8(s: string, maxBytes: number): string {
  const buf = Buffer.from(s, 'utf8');
  if (buf.byteLength <= maxBytes) return s;
  let end = Math.max(0, maxBytes);
  while (end > 0 && ((buf[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return buf.subarray(0, end).toString('utf8');
}

export interface SyslogFormatOptions {
  facility: SyslogFacility;
  appName: string;
  procId: number;
  /** Longest message in bytes; the MSG part is cut to fit. */
  maxMessageBytes: number;
}

/**
 * One RFC 5424 message: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`, MSGID "alert" or
 * "summary", the key fields as structured data, the alert's text as MSG.
 */
export function formatSyslog(a: Alert, opts: SyslogFormatOptions): string {
  const pri = SYSLOG_FACILITIES[opts.facility] * 8 + SEVERITY_CODE[a.severity];
  const params: Array<[string, string | number | undefined]> = [
    ['id', a.id],
    ['mode', a.mode],
    ['decision', a.decision],
    ['action', a.action],
    ['rule', a.rule],
    ['version', a.request.version],
    ['method', a.request.method],
    ['path', a.request.path],
    ['client', a.request.client.address],
    ['status', a.status],
    ['exe', a.caller?.exe],
    ['pid', a.caller?.pid],
    ['user', a.caller?.user],
    ['uid', a.caller?.uid],
    ['container', a.caller?.container],
    ['count', a.summary?.count],
  ];
  const sd = params
    .filter((p): p is [string, string | number] => p[1] !== undefined)
    .map(([k, v]) => `${k}="${sdEscape(String(v))}"`)
    .join(' ');
  const head =
    `<${pri}>1 ${a.time} ${headerField(a.host, 255)} ${headerField(opts.appName, 48)} ` +
    `${opts.procId} ${a.kind === 'summary' ? 'summary' : 'alert'} [${SD_ID} ${sd}] `;
  const room = opts.maxMessageBytes - Buffer.byteLength(head, 'utf8');
  return head + truncateUtf8(a.text.replace(/[\r\n]+/g, ' '), room);
}

/** The native addon's unix datagram calls, or an error that explains how to get them. */
export function loadUnixDgram(): NativeAddon {
  const loaded = loadNativeAddon();
  if (loaded.addon) return loaded.addon;
  throw new ImdsguardError(
    'IMDSGUARD_E_CONFIG',
    `alerts.sinks: syslog over a unix socket needs imdsguard's native addon (${loaded.reason})`,
    {
      hint: 'build it (npm run build:native; it needs make, a C compiler and python3), use the release executable, or use transport: udp',
    },
  );
}

export interface SyslogOptions extends Partial<SyslogFormatOptions> {
  name: string;
  transport: 'unix' | 'udp';
  /** Unix datagram socket path, default /dev/log. */
  path?: string;
  /** UDP receiver, default 127.0.0.1:514. */
  host?: string;
  port?: number;
}

/**
 * Syslog RFC 5424, one datagram per alert, over the unix datagram socket (/dev/log) or UDP.
 * Over a unix socket a missing or full receiver is an error and the batch is retried. UDP cannot
 * know whether a datagram arrived: only a refusal the kernel reports (ICMP port unreachable, seen on
 * the next send of the connected socket) fails a batch.
 */
export function createSyslogSink(opts: SyslogOptions): AlertSink {
  const fmt: SyslogFormatOptions = {
    facility: opts.facility ?? 'auth',
    appName: opts.appName ?? 'imdsguard',
    procId: opts.procId ?? process.pid,
    maxMessageBytes: opts.maxMessageBytes ?? (opts.transport === 'udp' ? 2048 : 8192),
  };
  const transport =
    opts.transport === 'unix'
      ? unixTransport(opts.path ?? '/dev/log')
      : udpTransport(opts.host ?? '127.0.0.1', opts.port ?? 514);
  return {
    name: opts.name,
    maxBatch: SYSLOG_MAX_BATCH,
    async send(batch) {
      for (const a of batch) await transport.send(Buffer.from(formatSyslog(a, fmt), 'utf8'));
    },
    close: () => transport.close(),
  };
}

interface Transport {
  send(buf: Buffer): Promise<void>;
  close(): Promise<void>;
}

function unixTransport(path: string): Transport {
  const addon = loadUnixDgram();
  let fd: number | undefined;
  const once = (buf: Buffer): (Error & { code?: unknown }) | undefined => {
    try {
      fd ??= addon.unixDgramOpen();
      addon.unixDgramSend(fd, path, buf);
      return undefined;
    } catch (err) {
      return err as Error;
    }
  };
  return {
    async send(buf) {
      // A full receiver queue (EAGAIN) clears as the reader catches up: wait a little and try again,
      // for at most UNIX_BUSY_WAIT_MS in all.
      let waited = 0;
      for (let i = 0; ; i++) {
        const err = once(buf);
        if (!err) return;
        const busy = err.code === 'EAGAIN' || err.code === 'ENOBUFS';
        if (!busy || waited >= UNIX_BUSY_WAIT_MS) {
          throw new SinkError(`syslog ${path}: ${busy ? 'receiver busy' : err.message}`, { cause: err });
        }
        const delay = Math.min(2 ** i, 50);
        await new Promise((r) => setTimeout(r, delay));
        waited += delay;
      }
    },
    async close() {
      if (fd !== undefined) addon.unixDgramClose(fd);
      fd = undefined;
    },
  };
}

function udpTransport(host: string, port: number): Transport {
  let sock: dgram.Socket | undefined;
  let connecting: Promise<dgram.Socket> | undefined;
  const open = (): Promise<dgram.Socket> => {
    if (sock) return Promise.resolve(sock);
    connecting ??= new Promise<dgram.Socket>((resolve, reject) => {
      const s = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
      const onError = (err: Error) => {
        connecting = undefined;
        s.close();
        reject(new SinkError(`syslog udp ${host}:${port}: ${err.message}`, { cause: err }));
      };
      s.once('error', onError);
      s.connect(port, host, () => {
        s.off('error', onError);
        s.on('error', () => {
          // Errors of a connected UDP socket come back through send callbacks.
        });
        sock = s;
        connecting = undefined;
        resolve(s);
      });
    });
    return connecting;
  };
  return {
    async send(buf) {
      const s = await open();
      await new Promise<void>((resolve, reject) => {
        s.send(buf, (err) => {
          if (err) reject(new SinkError(`syslog udp ${host}:${port}: ${err.message}`, { cause: err }));
          else resolve();
        });
      });
    },
    async close() {
      const s = sock;
      sock = undefined;
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}
