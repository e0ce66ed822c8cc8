import type { Alert } from '../alert.js';
import { post } from './http.js';
import { type AlertSink, SinkError } from './types.js';

/** Alerts per Slack message: each is one line of at most 1000 characters, well under Slack's 40,000. */
export const SLACK_MAX_BATCH = 20;

/** Slack's mrkdwn needs &, < and > escaped. */
export function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const ICON: Record<Alert['severity'], string> = {
  critical: ':rotating_light:',
  warning: ':warning:',
  notice: ':information_source:',
  info: ':white_check_mark:',
};

/** One message for a batch: one line per alert, in order. */
export function slackText(batch: readonly Alert[]): string {
  return batch.map((a) => `${ICON[a.severity]} ${slackEscape(a.text)}`).join('\n');
}

export interface SlackWebhookOptions {
  name: string;
  /** The incoming webhook URL. It is a secret: never logged, never in a sink name. */
  url: string;
  /** Per request, milliseconds. */
  timeoutMs: number;
}

/** A Slack incoming webhook: POST {"text": ...}; Slack answers 200 "ok". */
export function createSlackWebhookSink(opts: SlackWebhookOptions): AlertSink {
  return {
    name: opts.name,
    maxBatch: SLACK_MAX_BATCH,
    async send(batch) {
      if (batch.length === 0) return;
      await post(
        opts.url,
        JSON.stringify({ text: slackText(batch) }),
        { 'content-type': 'application/json' },
        opts.timeoutMs,
        `slack webhook ${opts.name}`,
      );
    },
    async close() {},
  };
}

export interface SlackApiOptions {
  name: string;
  /** Bot token (xoxb-...). A secret: sent only in the Authorization header. */
  token: string;
  channel: string;
  /** Base URL of the Web API, default https://slack.com/api (tests point it at loopback). */
  baseUrl: string;
  timeoutMs: number;
}

/** Slack errors that retrying cannot fix until the configuration changes. */
const PERMANENT = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'missing_scope',
  'no_permission',
  'restricted_action',
]);

/**
 * The Slack Web API chat.postMessage. Slack answers HTTP 200 with {"ok": false, "error": "..."} for
 * most failures, so the body decides; 429 carries Retry-After (seconds).
 */
export function createSlackApiSink(opts: SlackApiOptions): AlertSink {
  const url = `${opts.baseUrl.replace(/\/+$/, '')}/chat.postMessage`;
  return {
    name: opts.name,
    maxBatch: SLACK_MAX_BATCH,
    async send(batch) {
      if (batch.length === 0) return;
      const what = `slack api ${opts.name}`;
      const res = await post(
        url,
        JSON.stringify({ channel: opts.channel, text: slackText(batch), unfurl_links: false }),
        { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${opts.token}` },
        opts.timeoutMs,
        what,
      );
      let parsed: unknown;
      try {
        parsed = JSON.parse(res.body);
      } catch {
        throw new SinkError(`${what}: the answer is not JSON`);
      }
      const body = parsed as { ok?: unknown; error?: unknown };
      if (body.ok === true) return;
      const error = typeof body.error === 'string' ? body.error : 'unknown_error';
      throw new SinkError(`${what}: Slack answered ok:false (${error})`, {
        transient: !PERMANENT.has(error),
      });
    },
    async close() {},
  };
}
