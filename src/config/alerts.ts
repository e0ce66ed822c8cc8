import { z } from 'zod';

/**
 * Config section `alerts`: the sinks (Slack, webhooks, syslog, a file, CloudWatch Logs), noise
 * control, the spool and retries. Every size and time has a finite default; the unit is in the key's
 * name (Ms: milliseconds, Bytes). docs/alerts.md documents every key.
 */

const DAY_MS = 86_400_000;
const MIB = 1024 * 1024;

/** Syslog facilities (RFC 5424 section 6.2.1) and their codes. */
export const SYSLOG_FACILITIES = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;
export type SyslogFacility = keyof typeof SYSLOG_FACILITIES;

const sinkName = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, 'must be 1-63 letters, digits, ".", "_" or "-"')
  .optional();
/** Per request to a sink, milliseconds. */
const timeoutMs = z.number().int().min(100).max(300_000).optional();
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http or https URL' });

export const slackWebhookSinkSchema = z
  .object({ type: z.literal('slack-webhook'), name: sinkName, url: httpUrl, timeoutMs })
  .strict();

export const slackApiSinkSchema = z
  .object({
    type: z.literal('slack-api'),
    name: sinkName,
    /** Bot token (xoxb-...). */
    token: z.string().min(1),
    channel: z.string().min(1),
    /** The Web API's base URL (change it for tests or a proxy). */
    baseUrl: httpUrl.default('https://slack.com/api'),
    timeoutMs,
  })
  .strict();

export const webhookSinkSchema = z
  .object({
    type: z.literal('webhook'),
    name: sinkName,
    url: httpUrl,
    /** Value of the auth header (metatrapd's WEBHOOK_AUTH), e.g. "Bearer abc". */
    authHeader: z.string().min(1).max(4096).optional(),
    authHeaderName: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an HTTP header name')
      .default('Authorization'),
    /** Key of the X-Imdsguard-Signature HMAC-SHA256 header. */
    hmacSecret: z.string().min(16, 'must be at least 16 characters').max(4096).optional(),
    timeoutMs,
  })
  .strict();

export const syslogSinkSchema = z
  .object({
    type: z.literal('syslog'),
    name: sinkName,
    transport: z.enum(['unix', 'udp']).default('unix'),
    /** Unix datagram socket (transport unix). */
    path: z.string().min(1).default('/dev/log'),
    /** Receiver (transport udp). */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(514),
    facility: z.enum(Object.keys(SYSLOG_FACILITIES) as [SyslogFacility, ...SyslogFacility[]]).default('auth'),
    appName: z
      .string()
      .regex(/^[\x21-\x7e]{1,48}$/, 'must be 1-48 printable ASCII characters')
      .default('imdsguard'),
    /** Longest datagram, bytes (default 2048 over UDP, 8192 over a unix socket). */
    maxMessageBytes: z.number().int().min(480).max(65_000).optional(),
  })
  .strict();

export const fileSinkSchema = z
  .object({ type: z.literal('file'), name: sinkName, path: z.string().min(1) })
  .strict();

export const cloudwatchLogsSinkSchema = z
  .object({
    type: z.literal('cloudwatch-logs'),
    name: sinkName,
    group: z.string().regex(/^[.\-_/#A-Za-z0-9]{1,512}$/, 'must be a CloudWatch Logs group name'),
    /** Default: the host name. */
    stream: z
      .string()
      .regex(/^[^:*]{1,512}$/, 'must be a CloudWatch Logs stream name')
      .optional(),
    region: z.string().min(1).optional(),
    /** Endpoint override (tests, VPC endpoints). */
    endpoint: httpUrl.optional(),
    /** Also ship the caller summary records (alerts.callers; what `fleet usage --host-evidence cloudwatch-logs:GROUP` reads). */
    callers: z.boolean().default(true),
    timeoutMs,
  })
  .strict();

export const sinkConfigSchema = z.discriminatedUnion('type', [
  slackWebhookSinkSchema,
  slackApiSinkSchema,
  webhookSinkSchema,
  syslogSinkSchema,
  fileSinkSchema,
  cloudwatchLogsSinkSchema,
]);
export type SinkConfig = z.infer<typeof sinkConfigSchema>;

export const alertsConfigSchema = z
  .object({
    /** Generic webhooks (--alert URL, WEBHOOK); same keys as a webhook sink, without type. */
    webhooks: z
      .array(webhookSinkSchema.omit({ type: true }))
      .max(32)
      .default([]),
    /** Every other sink. */
    sinks: z.array(sinkConfigSchema).max(32).default([]),
    /** Do not alert on allowed requests (metatrapd's -quiet). */
    quiet: z.boolean().default(true),
    noise: z
      .object({
        /** Per (caller, rule, path) window, milliseconds. */
        windowMs: z.number().int().min(1000).max(DAY_MS).default(300_000),
        /** Alerts per key per window before they are folded into a summary (1 = dedup). */
        perKey: z.number().int().min(1).max(10_000).default(1),
        /** Window of the global limit, milliseconds. */
        globalWindowMs: z.number().int().min(1000).max(DAY_MS).default(60_000),
        /** Alerts per global window, all keys together. */
        globalLimit: z.number().int().min(1).max(1_000_000).default(120),
        /** Keys tracked at once. */
        maxKeys: z.number().int().min(1).max(1_000_000).default(10_000),
      })
      .strict()
      .prefault({}),
    /** Events waiting for the spool in memory, count; beyond it they are dropped and counted. */
    queueSize: z.number().int().min(1).max(1_000_000).default(10_000),
    spool: z
      .object({
        /** SQLite file of the durable spool. Default: beside events.db ("<db>-alerts"), else in memory (not durable). */
        path: z.string().min(1).optional(),
        /** Bytes of alerts held; past it the oldest are dropped and counted (default 64 MiB). */
        maxBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .max(64 * 1024 * MIB)
          .default(64 * MIB),
      })
      .strict()
      .prefault({}),
    retry: z
      .object({
        /** First retry delay, milliseconds. */
        initialMs: z.number().int().min(1).max(3_600_000).default(1000),
        /** Longest retry delay, milliseconds. */
        maxMs: z.number().int().min(1).max(3_600_000).default(300_000),
        factor: z.number().min(1).max(10).default(2),
        /** 0..1: each delay is shortened by up to this fraction at random. */
        jitter: z.number().min(0).max(1).default(0.5),
      })
      .strict()
      .prefault({}),
    /** Per request to a sink unless the sink sets its own, milliseconds. */
    timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
    /**
     * The caller summary: one record per caller and IMDS version every interval, shipped to the
     * CloudWatch Logs sinks with `callers: true` (docs/events.md, "Caller summary records").
     */
    callers: z
      .object({
        /** Length of one summary interval, milliseconds (default 5 minutes). */
        intervalMs: z.number().int().min(1000).max(DAY_MS).default(300_000),
        /** Callers (exe, user, container, pod, version) kept per interval; the rest fold into one "(other callers)" record. */
        maxCallers: z.number().int().min(1).max(100_000).default(1000),
        /** Per request reading the instance identity document, milliseconds. */
        identityTimeoutMs: z.number().int().min(100).max(60_000).default(2000),
      })
      .strict()
      .prefault({}),
    /** At shutdown, how long the sinks may catch up before the rest waits in the spool, milliseconds. */
    drainTimeoutMs: z.number().int().min(0).max(300_000).default(5000),
  })
  .strict();

export type AlertsConfig = z.infer<typeof alertsConfigSchema>;
export type AlertsConfigInput = z.input<typeof alertsConfigSchema>;

/**
 * metatrapd's environment names, as a partial alerts config: SLACK_WEBHOOK (incoming webhook URL),
 * SLACK_TOKEN + SLACK_CHANNEL (chat.postMessage), WEBHOOK (generic webhook URL) and WEBHOOK_AUTH (its
 * Authorization header value). Empty values are ignored. Pure: the env loader merges the result.
 */
export function alertsFromLegacyEnv(
  env: Readonly<Record<string, string | undefined>>,
): Pick<AlertsConfigInput, 'sinks' | 'webhooks'> {
  const get = (k: string): string | undefined => {
    const v = env[k]?.trim();
    return v ? v : undefined;
  };
  const out: Pick<AlertsConfigInput, 'sinks' | 'webhooks'> = {};
  const sinks: NonNullable<AlertsConfigInput['sinks']> = [];
  const slackWebhook = get('SLACK_WEBHOOK');
  if (slackWebhook) sinks.push({ type: 'slack-webhook', url: slackWebhook });
  const token = get('SLACK_TOKEN');
  const channel = get('SLACK_CHANNEL');
  // A token without a channel (or the reverse) is passed on so validation names what is missing.
  if (token || channel) sinks.push({ type: 'slack-api', token: token ?? '', channel: channel ?? '' });
  if (sinks.length > 0) out.sinks = sinks;
  const webhook = get('WEBHOOK');
  const auth = get('WEBHOOK_AUTH');
  if (webhook) out.webhooks = [auth ? { url: webhook, authHeader: auth } : { url: webhook }];
  return out;
}
