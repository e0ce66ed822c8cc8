import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { parseConfig } from '../../src/config/index.js';
import type { GuardConfig } from '../../src/config/schema.js';
import type { EventRecorder, GuardEvent } from '../../src/guard/events/types.js';
import { testTimeLeft, waitFor } from './wait.js';

/** Helpers for guard integration tests: a config builder, a memory recorder, HTTP and raw clients. */

export function guardConfig(guard: Record<string, unknown>): GuardConfig {
  return parseConfig({ guard: { listen: ['127.0.0.1:0'], ...guard } }).guard;
}

export class MemoryRecorder implements EventRecorder {
  events: GuardEvent[] = [];
  record(e: GuardEvent): void {
    this.events.push(e);
  }
  async close(): Promise<void> {}
  /**
   * Waits until at least n events are recorded (events are recorded when a response closes), for as
   * long as the running test may (test/support/wait.ts).
   */
  async waitFor(n: number): Promise<GuardEvent[]> {
    await waitFor(() => this.events.length >= n, `${n} recorded event(s)`);
    return this.events;
  }
  last(): GuardEvent {
    const e = this.events[this.events.length - 1];
    if (!e) throw new Error('no event recorded');
    return e;
  }
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export function send(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string | string[]> = {},
  body?: string,
): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port), method, path, headers, agent: false },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          data += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      },
    );
    req.on('error', reject);
    // Bounds a hang only: as long as the running test may wait.
    req.setTimeout(testTimeLeft() ?? 5000, () => req.destroy(new Error('client timeout')));
    req.end(body);
  });
}

/**
 * Sends raw bytes and returns everything the server wrote until it closed (or timeoutMs: by default
 * as long as the running test may wait; the guard closes the connection after every answer).
 */
export function raw(
  url: string,
  data: string | string[],
  timeoutMs = testTimeLeft() ?? 3000,
  gapMs = 0,
): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port), u.hostname.replace(/^\[|\]$/g, ''));
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      out += c;
    });
    const done = () => resolve(out);
    s.on('close', done);
    s.on('error', done);
    setTimeout(() => {
      s.destroy();
    }, timeoutMs);
    s.on('connect', async () => {
      const parts = Array.isArray(data) ? data : [data];
      for (const p of parts) {
        if (s.destroyed) return;
        s.write(p);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

export function statusOf(rawReply: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(rawReply);
  return m ? Number(m[1]) : 0;
}
