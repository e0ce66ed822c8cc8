import { createHash } from 'node:crypto';
import type { AlertsConfig, SinkConfig } from '../../../config/alerts.js';
import { createCloudWatchLogsSink } from './cloudwatch-logs.js';
import { createFileSink } from './file.js';
import { createSlackApiSink, createSlackWebhookSink } from './slack.js';
import { createSyslogSink } from './syslog.js';
import type { AlertSink } from './types.js';
import { createWebhookSink } from './webhook.js';

export type { AlertSink } from './types.js';
export { SinkError } from './types.js';

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 8);
}

/**
 * A sink's default name: its type and a hash of its target. Stable across restarts (the spool keeps
 * cursors by name) and free of secrets (a Slack webhook URL is one).
 */
export function defaultSinkName(cfg: SinkConfig): string {
  switch (cfg.type) {
    case 'slack-webhook':
    case 'webhook':
      return `${cfg.type}-${shortHash(cfg.url)}`;
    case 'slack-api':
      return `${cfg.type}-${shortHash(`${cfg.baseUrl}\n${cfg.channel}`)}`;
    case 'syslog':
      return `syslog-${cfg.transport}-${shortHash(cfg.transport === 'unix' ? cfg.path : `${cfg.host}:${cfg.port}`)}`;
    case 'file':
      return `file-${shortHash(cfg.path)}`;
    case 'cloudwatch-logs':
      return `cloudwatch-logs-${shortHash(`${cfg.region ?? ''}\n${cfg.group}\n${cfg.stream ?? ''}`)}`;
  }
}

/** Every sink of the alerts config: the webhooks (--alert) first, then `sinks`, in order. */
export function sinkConfigs(alerts: Pick<AlertsConfig, 'webhooks' | 'sinks'>): SinkConfig[] {
  return [...alerts.webhooks.map((w) => ({ ...w, type: 'webhook' as const })), ...alerts.sinks];
}

export interface SinkDefaults {
  hostname: string;
  /** The instance id, when the identity document can be read (the default CloudWatch Logs stream). */
  instanceId?: () => Promise<string | undefined>;
  /** Per request, milliseconds. */
  timeoutMs: number;
}

/** One log stream per instance: the instance id when it can be read, else the host name. */
function cloudwatchStream(defaults: SinkDefaults): string | (() => Promise<string>) {
  const instanceId = defaults.instanceId;
  if (!instanceId) return defaults.hostname;
  return async () => (await instanceId().catch(() => undefined)) ?? defaults.hostname;
}

/** Builds one sink from its config. */
export function createSink(cfg: SinkConfig, defaults: SinkDefaults): AlertSink {
  const name = cfg.name ?? defaultSinkName(cfg);
  switch (cfg.type) {
    case 'slack-webhook':
      return createSlackWebhookSink({ name, url: cfg.url, timeoutMs: cfg.timeoutMs ?? defaults.timeoutMs });
    case 'slack-api':
      return createSlackApiSink({
        name,
        token: cfg.token,
        channel: cfg.channel,
        baseUrl: cfg.baseUrl,
        timeoutMs: cfg.timeoutMs ?? defaults.timeoutMs,
      });
    case 'webhook':
      return createWebhookSink({
        name,
        url: cfg.url,
        authHeaderName: cfg.authHeaderName,
        timeoutMs: cfg.timeoutMs ?? defaults.timeoutMs,
        ...(cfg.authHeader !== undefined ? { authHeader: cfg.authHeader } : {}),
        ...(cfg.hmacSecret !== undefined ? { hmacSecret: cfg.hmacSecret } : {}),
      });
    case 'syslog':
      return createSyslogSink({
        name,
        transport: cfg.transport,
        path: cfg.path,
        host: cfg.host,
        port: cfg.port,
        facility: cfg.facility,
        appName: cfg.appName,
        ...(cfg.maxMessageBytes !== undefined ? { maxMessageBytes: cfg.maxMessageBytes } : {}),
      });
    case 'file':
      return createFileSink({ name, path: cfg.path });
    case 'cloudwatch-logs':
      return createCloudWatchLogsSink({
        name,
        group: cfg.group,
        stream: cfg.stream ?? cloudwatchStream(defaults),
        callers: cfg.callers,
        timeoutMs: cfg.timeoutMs ?? defaults.timeoutMs,
        ...(cfg.region !== undefined ? { region: cfg.region } : {}),
        ...(cfg.endpoint !== undefined ? { endpoint: cfg.endpoint } : {}),
      });
  }
}
