import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Alert, toAlert } from '../../src/guard/alerts/alert.js';
import { AlertPipeline } from '../../src/guard/alerts/pipeline.js';
import type { AlertSink } from '../../src/guard/alerts/sinks/types.js';
import { makeEvent, waitFor } from './guard-events.js';

/**
 * The one contract every alert sink passes, each against a real local receiver. A harness gives the
 * sink, what its receiver got (as the alerts' reason markers, in arrival order), the raw payloads
 * (to look for secrets), and a way to take the receiver down and bring it back.
 */
export interface SinkHarness {
  sink: AlertSink;
  /** The reason markers of the alerts received, in arrival order. */
  received(): Promise<string[]>;
  /** Every payload the receiver got, as text (headers included where there are any). */
  payloads(): string[];
  /** Makes the receiver refuse or fail. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Strings that must never reach the receiver (configured secrets). */
  secrets: string[];
  close(): Promise<void>;
}

export type MakeHarness = () => Promise<SinkHarness>;

let seq = 0;
/** Alerts with unique markers as their reason (and distinct paths, so noise control keeps them all). */
export function markedAlerts(n: number, tag = 'm'): Alert[] {
  return Array.from({ length: n }, () => {
    seq += 1;
    const marker = `${tag}-${String(seq).padStart(6, '0')}`;
    return toAlert(makeEvent({ reason: marker, request: { path: `/latest/meta-data/k${seq}` } }));
  });
}

export function markersOf(alerts: readonly Alert[]): string[] {
  return alerts.map((a) => a.reason);
}

/** Extracts markers from free text (Slack, syslog), in order. */
export function markersInText(text: string, tag = '[a-z]+'): string[] {
  return [...text.matchAll(new RegExp(`\\b(${tag}-\\d{6})\\b(?!/)`, 'g'))].map((m) => m[1] as string);
}

/** First occurrences, in order: at-least-once delivery may repeat a batch after a lost answer. */
function firstOccurrences(xs: readonly string[]): string[] {
  const seen = new Set<string>();
  return xs.filter((x) => {
    if (seen.has(x)) return false;
    seen.add(x);
    return true;
  });
}

/**
 * Registers the contract for one sink. `outages: false` for a transport that cannot see a receiver is
 * gone (UDP): the outage cases are then not registered (not skipped: they could never run).
 */
export function sinkContract(name: string, make: MakeHarness, opts: { outages?: boolean } = {}): void {
  const itOutage = opts.outages === false ? undefined : it;
  describe(`alert sink contract: ${name}`, () => {
    const open: SinkHarness[] = [];
    const dirs: string[] = [];
    const harness = async () => {
      const h = await make();
      open.push(h);
      return h;
    };
    afterEach(async () => {
      for (const h of open.splice(0)) {
        await h.sink.close().catch(() => {});
        await h.close();
      }
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    });

    it('has a name and a positive maxBatch', async () => {
      const h = await harness();
      expect(h.sink.name).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
      expect(h.sink.maxBatch).toBeGreaterThan(0);
    });

    it('delivers one alert', async () => {
      const h = await harness();
      const [a] = markedAlerts(1);
      await h.sink.send([a as Alert]);
      await waitFor(async () => (await h.received()).length >= 1, 'one alert');
      expect(await h.received()).toEqual(markersOf([a as Alert]));
    });

    it('delivers a full batch in order', async () => {
      const h = await harness();
      const n = Math.min(h.sink.maxBatch, 25);
      const alerts = markedAlerts(n);
      await h.sink.send(alerts);
      await waitFor(async () => (await h.received()).length >= n, 'the batch');
      expect(await h.received()).toEqual(markersOf(alerts));
    });

    it('keeps order across consecutive batches', async () => {
      const h = await harness();
      const a = markedAlerts(3);
      const b = markedAlerts(4);
      await h.sink.send(a);
      await h.sink.send(b);
      await waitFor(async () => (await h.received()).length >= 7, 'two batches');
      expect(await h.received()).toEqual(markersOf([...a, ...b]));
    });

    it('never sends secrets, argv or the configured credentials', async () => {
      const h = await harness();
      await h.sink.send(markedAlerts(2));
      await waitFor(async () => (await h.received()).length >= 2, 'two alerts');
      const all = h.payloads().join('\n');
      expect(all).not.toContain('SECRET-ARGV-VALUE');
      for (const s of h.secrets) expect(all).not.toContain(s);
    });

    itOutage?.('rejects while the receiver is down, then delivers once it is back', async () => {
      const h = await harness();
      await h.down();
      const alerts = markedAlerts(2);
      await expect(h.sink.send(alerts)).rejects.toThrow();
      await h.up();
      await h.sink.send(alerts);
      await waitFor(async () => (await h.received()).length >= 2, 'delivery after recovery');
      expect(firstOccurrences(await h.received())).toEqual(markersOf(alerts));
    });

    itOutage?.('through the pipeline: an outage then recovery loses nothing and keeps order', async () => {
      const h = await harness();
      const dir = mkdtempSync(join(tmpdir(), 'imdsguard-contract-'));
      dirs.push(dir);
      await h.down();
      const pipeline = new AlertPipeline({
        sinks: [h.sink],
        spool: { path: join(dir, 'spool.db'), maxBytes: 8 * 1024 * 1024 },
        quiet: true,
        queueSize: 1000,
        retry: { initialMs: 5, maxMs: 40, factor: 2, jitter: 0.5 },
        drainTimeoutMs: 2000,
      });
      const events = Array.from({ length: 30 }, (_, i) =>
        makeEvent({ reason: `p-${String(900000 + i)}`, request: { path: `/latest/meta-data/p${i}` } }),
      );
      for (const e of events) pipeline.record(e);
      await waitFor(() => pipeline.stats().sinks[0]!.failures >= 2, 'failed attempts');
      expect(await h.received()).toEqual([]);
      await h.up();
      await waitFor(() => pipeline.stats().sinks[0]!.backlog === 0, 'the backlog to drain');
      // Accepted by the transport; a datagram receiver may still be reading its queue.
      await waitFor(async () => firstOccurrences(await h.received()).length >= events.length, 'the receiver');
      expect(firstOccurrences(await h.received())).toEqual(events.map((e) => e.reason));
      await pipeline.close();
    });
  });
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** 'ok' answers via respond(); 'fail' answers 500; 'refuse' closes the listening socket. */
  mode: 'ok' | 'fail';
  /** Custom answer for the next requests (status, headers, body). */
  respond: (req: ReceivedRequest) => { status: number; headers?: Record<string, string>; body: string };
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real HTTP receiver on loopback. down() stops listening (connections are refused); up() listens
 * again on the same port.
 */
export async function startHttpReceiver(
  respond: HttpReceiver['respond'] = () => ({ status: 200, body: 'ok' }),
): Promise<HttpReceiver> {
  let server: Server | undefined;
  let port = 0;
  const rec: HttpReceiver = {
    url: '',
    requests: [],
    mode: 'ok',
    respond,
    down: async () => {
      const s = server;
      server = undefined;
      if (s) {
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        });
      }
    },
    up: async () => {
      if (!server) await listen();
    },
    close: async () => rec.down(),
  };
  const listen = async () => {
    const s = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const r: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      if (rec.mode === 'fail') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('down for a test');
        return;
      }
      rec.requests.push(r);
      const out = rec.respond(r);
      res.writeHead(out.status, { 'content-type': 'text/plain', ...out.headers }).end(out.body);
    });
    s.keepAliveTimeout = 100;
    await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', () => resolve()));
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  await listen();
  rec.url = `http://127.0.0.1:${port}`;
  return rec;
}
