import { createHmac } from 'node:crypto';
import type { Alert } from '../alert.js';
import { post } from './http.js';
import type { AlertSink } from './types.js';

/** Alerts per webhook request. */
export const WEBHOOK_MAX_BATCH = 100;

export const SIGNATURE_HEADER = 'x-imdsguard-signature';
export const TIMESTAMP_HEADER = 'x-imdsguard-timestamp';

export interface WebhookOptions {
  name: string;
  url: string;
  /** Sent as `authHeaderName: authHeader` when set (metatrapd's WEBHOOK_AUTH). A secret. */
  authHeader?: string;
  authHeaderName: string;
  /** HMAC-SHA256 key for the signature header. A secret. */
  hmacSecret?: string;
  timeoutMs: number;
  /** Seconds since the epoch, for the timestamp header (injected in tests). */
  now?: () => number;
}

/** The body a webhook receives. */
export interface WebhookBody {
  source: 'imdsguard';
  alerts: readonly Alert[];
}

/**
 * The signature: `v1=` + hex HMAC-SHA256(secret, `${timestamp}.${body}`). The timestamp is signed too so
 * a receiver can refuse replays (check it is recent, then compare in constant time).
 */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** A generic webhook: POST a JSON body of alerts, with optional auth and signature headers. */
export function createWebhookSink(opts: WebhookOptions): AlertSink {
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  return {
    name: opts.name,
    maxBatch: WEBHOOK_MAX_BATCH,
    async send(batch) {
      if (batch.length === 0) return;
      const body = JSON.stringify({ source: 'imdsguard', alerts: batch } satisfies WebhookBody);
      const timestamp = String(now());
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'imdsguard',
        [TIMESTAMP_HEADER]: timestamp,
      };
      if (opts.authHeader !== undefined) headers[opts.authHeaderName.toLowerCase()] = opts.authHeader;
      if (opts.hmacSecret !== undefined) {
        headers[SIGNATURE_HEADER] = webhookSignature(opts.hmacSecret, timestamp, body);
      }
      await post(opts.url, body, headers, opts.timeoutMs, `webhook ${opts.name}`);
    },
    async close() {},
  };
}
