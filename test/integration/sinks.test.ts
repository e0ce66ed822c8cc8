import * as dgram from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/guard/alerts/alert.js';
import { createCloudWatchLogsSink } from '../../src/guard/alerts/sinks/cloudwatch-logs.js';
import { createFileSink } from '../../src/guard/alerts/sinks/file.js';
import { createSlackApiSink, createSlackWebhookSink } from '../../src/guard/alerts/sinks/slack.js';
import { createSyslogSink } from '../../src/guard/alerts/sinks/syslog.js';
import { SinkError } from '../../src/guard/alerts/sinks/types.js';
import {
  createWebhookSink,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  webhookSignature,
} from '../../src/guard/alerts/sinks/webhook.js';
import { loadNativeAddon } from '../../src/native/addon.js';
import { startFakeCwLogs } from '../support/fake-cwlogs.js';
import {
  markedAlerts,
  markersInText,
  markersOf,
  sinkContract,
  startHttpReceiver,
} from '../support/sink-contract.js';
import { waitFor } from '../support/wait.js';

const tmp = mkdtempSync(join(tmpdir(), 'imdsguard-sinks-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => join(tmp, `${name}-${++n}`);

const SLACK_TOKEN = 'xoxb-test-token-never-in-payloads';
const WEBHOOK_AUTH = 'Bearer webhook-auth-never-in-payloads';
const HMAC = 'hmac-secret-never-in-payloads';

sinkContract('slack incoming webhook', async () => {
  const r = await startHttpReceiver();
  return {
    sink: createSlackWebhookSink({
      name: 'slack-webhook-test',
      url: `${r.url}/services/T000/B000/XXXX`,
      timeoutMs: 2000,
    }),
    received: async () =>
      r.requests.flatMap((q) => markersInText((JSON.parse(q.body) as { text: string }).text)),
    payloads: () => r.requests.map((q) => q.body),
    down: async () => {
      r.mode = 'fail';
    },
    up: async () => {
      r.mode = 'ok';
    },
    secrets: [],
    close: () => r.close(),
  };
});

sinkContract('slack chat.postMessage', async () => {
  const r = await startHttpReceiver((q) =>
    q.headers['authorization'] === `Bearer ${SLACK_TOKEN}`
      ? { status: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true,"ts":"1.2"}' }
      : {
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: '{"ok":false,"error":"invalid_auth"}',
        },
  );
  return {
    sink: createSlackApiSink({
      name: 'slack-api-test',
      token: SLACK_TOKEN,
      channel: '#sec',
      baseUrl: `${r.url}/api`,
      timeoutMs: 2000,
    }),
    received: async () =>
      r.requests.flatMap((q) => markersInText((JSON.parse(q.body) as { text: string }).text)),
    payloads: () => r.requests.map((q) => q.body),
    down: () => r.down(),
    up: () => r.up(),
    secrets: [SLACK_TOKEN],
    close: () => r.close(),
  };
});

sinkContract('generic webhook', async () => {
  const r = await startHttpReceiver();
  return {
    sink: createWebhookSink({
      name: 'webhook-test',
      url: `${r.url}/hook`,
      authHeader: WEBHOOK_AUTH,
      authHeaderName: 'Authorization',
      hmacSecret: HMAC,
      timeoutMs: 2000,
    }),
    received: async () =>
      r.requests.flatMap((q) => markersOf((JSON.parse(q.body) as { alerts: Alert[] }).alerts)),
    payloads: () => r.requests.map((q) => q.body),
    down: () => r.down(),
    up: () => r.up(),
    secrets: [WEBHOOK_AUTH, HMAC],
    close: () => r.close(),
  };
});

const unixDgram = loadNativeAddon().addon;

/** A syslog listener on a unix datagram socket in a temp dir (the native addon's receive side). */
function unixListener(path: string) {
  if (!unixDgram) throw new Error('the native addon is not built (npm run build:native)');
  const dg = unixDgram;
  const messages: string[] = [];
  let fd: number | undefined;
  // The kernel queues only net.unix.max_dgram_qlen datagrams: read them as they come, as syslogd does.
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    for (
      let m = fd === undefined ? null : dg.unixDgramRecv(fd);
      m;
      m = fd === undefined ? null : dg.unixDgramRecv(fd)
    )
      messages.push(m.toString('utf8'));
    return messages;
  };
  const up = async () => {
    if (fd !== undefined) return;
    if (existsSync(path)) rmSync(path);
    fd = dg.unixDgramOpen();
    dg.unixDgramBind(fd, path);
    timer = setInterval(drain, 1);
  };
  const down = async () => {
    clearInterval(timer);
    drain();
    if (fd !== undefined) dg.unixDgramClose(fd);
    fd = undefined;
    if (existsSync(path)) rmSync(path);
  };
  return { drain, up, down };
}

sinkContract('syslog over a unix datagram socket', async () => {
  const path = fresh('log.sock');
  const l = unixListener(path);
  await l.up();
  return {
    sink: createSyslogSink({ name: 'syslog-unix-test', transport: 'unix', path }),
    received: async () => l.drain().flatMap((m) => markersInText(m.slice(m.lastIndexOf('] ')))),
    payloads: () => l.drain(),
    down: () => l.down(),
    up: () => l.up(),
    secrets: [],
    close: () => l.down(),
  };
});

sinkContract(
  'syslog over UDP',
  async () => {
    const messages: string[] = [];
    const sock = dgram.createSocket('udp4', (msg) => messages.push(msg.toString('utf8')));
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    const port = (sock.address() as AddressInfo).port;
    return {
      sink: createSyslogSink({ name: 'syslog-udp-test', transport: 'udp', host: '127.0.0.1', port }),
      received: async () => messages.flatMap((m) => markersInText(m.slice(m.lastIndexOf('] ')))),
      payloads: () => messages,
      down: async () => {},
      up: async () => {},
      secrets: [],
      close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
    };
  },
  { outages: false },
);

sinkContract('JSON-lines file', async () => {
  const dir = fresh('filesink');
  const blocker = join(dir, 'sub');
  const path = join(blocker, 'alerts.jsonl');
  const read = () => (existsSync(path) ? readFileSync(path, 'utf8') : '');
  return {
    sink: createFileSink({ name: 'file-test', path }),
    received: async () =>
      read()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => (JSON.parse(l) as Alert).reason),
    payloads: () => [read()],
    // A regular file where the directory should be: the sink cannot create or open the file.
    down: async () => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(blocker, 'not a directory');
    },
    up: async () => rmSync(blocker, { force: true }),
    secrets: [],
    close: async () => {},
  };
});

const fakeCreds = { accessKeyId: 'AKIDTESTTESTTEST', secretAccessKey: 'test-secret-key-never-in-payloads' };

sinkContract('CloudWatch Logs', async () => {
  const fake = await startFakeCwLogs();
  const group = '/imdsguard/alerts';
  const stream = 'host-1';
  return {
    sink: createCloudWatchLogsSink({
      name: 'cwlogs-test',
      group,
      stream,
      region: 'us-east-1',
      endpoint: fake.endpoint,
      timeoutMs: 2000,
      clientConfig: { credentials: fakeCreds },
    }),
    received: async () =>
      (fake.groups.get(group)?.get(stream) ?? []).map((e) => (JSON.parse(e.message) as Alert).reason),
    payloads: () => [...fake.groups.values()].flatMap((g) => [...g.values()].flat().map((e) => e.message)),
    down: async () => {
      fake.failWith = 500;
    },
    up: async () => {
      fake.failWith = undefined;
    },
    secrets: [fakeCreds.secretAccessKey],
    close: () => fake.close(),
  };
});

describe('slack chat.postMessage specifics', () => {
  it('treats an ok:false body as a failure, naming the Slack error', async () => {
    const r = await startHttpReceiver(() => ({
      status: 200,
      body: '{"ok":false,"error":"channel_not_found"}',
    }));
    try {
      const sink = createSlackApiSink({
        name: 's',
        token: SLACK_TOKEN,
        channel: '#nope',
        baseUrl: r.url,
        timeoutMs: 2000,
      });
      const err = await sink.send(markedAlerts(1)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SinkError);
      expect((err as SinkError).message).toContain('channel_not_found');
      expect((err as SinkError).transient).toBe(false);
      expect((err as SinkError).message).not.toContain(SLACK_TOKEN);
      expect(r.requests[0]?.url).toBe('/chat.postMessage');
      expect(JSON.parse(r.requests[0]?.body ?? '{}')).toMatchObject({ channel: '#nope' });
    } finally {
      await r.close();
    }
  });

  it('honours 429 Retry-After', async () => {
    const r = await startHttpReceiver(() => ({ status: 429, headers: { 'retry-after': '7' }, body: '' }));
    try {
      const sink = createSlackApiSink({
        name: 's',
        token: SLACK_TOKEN,
        channel: '#c',
        baseUrl: r.url,
        timeoutMs: 2000,
      });
      const err = await sink.send(markedAlerts(1)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SinkError);
      expect((err as SinkError).retryAfterMs).toBe(7000);
    } finally {
      await r.close();
    }
  });

  it('escapes Slack control characters', async () => {
    const r = await startHttpReceiver();
    try {
      const sink = createSlackWebhookSink({ name: 's', url: r.url, timeoutMs: 2000 });
      const [a] = markedAlerts(1);
      await sink.send([{ ...(a as Alert), text: 'x <!channel> & <http://evil|click>' }]);
      const text = (JSON.parse(r.requests[0]?.body ?? '{}') as { text: string }).text;
      expect(text).toContain('&lt;!channel&gt; &amp; &lt;http://evil|click&gt;');
      expect(text).not.toContain('<!channel>');
    } finally {
      await r.close();
    }
  });
});

describe('generic webhook specifics', () => {
  it('sends the auth header, a timestamp and an HMAC-SHA256 signature a receiver can verify', async () => {
    const r = await startHttpReceiver();
    try {
      const sink = createWebhookSink({
        name: 'w',
        url: `${r.url}/hook`,
        authHeader: WEBHOOK_AUTH,
        authHeaderName: 'X-Api-Key',
        hmacSecret: HMAC,
        timeoutMs: 2000,
        now: () => 1_700_000_000,
      });
      await sink.send(markedAlerts(2));
      const q = r.requests[0];
      expect(q?.headers['x-api-key']).toBe(WEBHOOK_AUTH);
      expect(q?.headers['content-type']).toBe('application/json');
      expect(q?.headers[TIMESTAMP_HEADER]).toBe('1700000000');
      expect(q?.headers[SIGNATURE_HEADER]).toBe(webhookSignature(HMAC, '1700000000', q?.body ?? ''));
      expect(webhookSignature('other-secret-1234567', '1700000000', q?.body ?? '')).not.toBe(
        q?.headers[SIGNATURE_HEADER],
      );
      expect(JSON.parse(q?.body ?? '{}')).toMatchObject({ source: 'imdsguard' });
    } finally {
      await r.close();
    }
  });

  it('omits auth and signature headers when not configured', async () => {
    const r = await startHttpReceiver();
    try {
      const sink = createWebhookSink({
        name: 'w',
        url: r.url,
        authHeaderName: 'Authorization',
        timeoutMs: 2000,
      });
      await sink.send(markedAlerts(1));
      expect(r.requests[0]?.headers['authorization']).toBeUndefined();
      expect(r.requests[0]?.headers[SIGNATURE_HEADER]).toBeUndefined();
    } finally {
      await r.close();
    }
  });

  it('fails on a 4xx as non-transient and on a timeout', async () => {
    const r = await startHttpReceiver(() => ({ status: 404, body: 'no such hook' }));
    try {
      const sink = createWebhookSink({
        name: 'w',
        url: r.url,
        authHeaderName: 'Authorization',
        timeoutMs: 2000,
      });
      const err = (await sink.send(markedAlerts(1)).catch((e: unknown) => e)) as SinkError;
      expect(err).toBeInstanceOf(SinkError);
      expect(err.transient).toBe(false);
      expect(err.message).toContain('404');
    } finally {
      await r.close();
    }
  });
});

describe('syslog specifics', () => {
  it('writes RFC 5424 messages with structured data', async () => {
    const messages: string[] = [];
    const sock = dgram.createSocket('udp4', (msg) => messages.push(msg.toString('utf8')));
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    try {
      const port = (sock.address() as AddressInfo).port;
      const sink = createSyslogSink({
        name: 'u',
        transport: 'udp',
        host: '127.0.0.1',
        port,
        facility: 'local3',
        procId: 77,
      });
      const [a] = markedAlerts(1);
      await sink.send([a as Alert]);
      await waitFor(() => messages.length > 0, 'the syslog datagram');
      await sink.close();
      const m = messages[0] ?? '';
      // local3 (19) * 8 + warning (4) = 156
      expect(m).toMatch(
        /^<156>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z test-host imdsguard 77 alert \[imdsguard@32473 /,
      );
      expect(m).toContain('rule="default-deny-v1"');
      expect(m).toContain('exe="/usr/bin/curl"');
      expect(m).toContain((a as Alert).reason);
    } finally {
      sock.close();
    }
  });

  it('fails when the unix socket does not exist', async () => {
    const sink = createSyslogSink({ name: 'x', transport: 'unix', path: join(tmp, 'missing.sock') });
    await expect(sink.send(markedAlerts(1))).rejects.toBeInstanceOf(SinkError);
    await sink.close();
  });
});

describe('CloudWatch Logs specifics', () => {
  it('creates the group and stream once, tolerating ResourceAlreadyExists', async () => {
    const fake = await startFakeCwLogs();
    try {
      fake.groups.set('/g', new Map()); // the group already exists
      const sink = createCloudWatchLogsSink({
        name: 'c',
        group: '/g',
        stream: 's',
        region: 'eu-west-1',
        endpoint: fake.endpoint,
        timeoutMs: 2000,
        clientConfig: { credentials: fakeCreds },
      });
      await sink.send(markedAlerts(2));
      await sink.send(markedAlerts(1));
      await sink.close();
      expect(fake.calls).toEqual(['CreateLogGroup', 'CreateLogStream', 'PutLogEvents', 'PutLogEvents']);
      expect(fake.groups.get('/g')?.get('s')).toHaveLength(3);
    } finally {
      await fake.close();
    }
  });

  it('recreates a stream deleted under it', async () => {
    const fake = await startFakeCwLogs();
    try {
      const sink = createCloudWatchLogsSink({
        name: 'c',
        group: '/g2',
        stream: 's',
        region: 'eu-west-1',
        endpoint: fake.endpoint,
        timeoutMs: 2000,
        clientConfig: { credentials: fakeCreds },
      });
      await sink.send(markedAlerts(1));
      fake.groups.delete('/g2');
      await expect(sink.send(markedAlerts(1))).rejects.toBeInstanceOf(SinkError);
      await sink.send(markedAlerts(1));
      expect(fake.groups.get('/g2')?.get('s')).toHaveLength(1);
      await sink.close();
    } finally {
      await fake.close();
    }
  });
});
