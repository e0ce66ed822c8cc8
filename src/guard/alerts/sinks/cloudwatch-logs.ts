import type { CloudWatchLogsClient, CloudWatchLogsClientConfig } from '@aws-sdk/client-cloudwatch-logs';
import { ALERT_KINDS, type AlertSink, SinkError, type SpooledRecord } from './types.js';

/**
 * Alerts per PutLogEvents call. An alert is at most a few KiB of JSON, so 200 stays well under the
 * call's 1 MiB and 10,000-event limits.
 */
export const CLOUDWATCH_MAX_BATCH = 200;

export interface CloudWatchLogsOptions {
  name: string;
  group: string;
  /**
   * The log stream, or how to find it on first use (the guard's default: the instance id from the
   * identity document, else the host name). Resolved once.
   */
  stream: string | (() => Promise<string>);
  /** Also ship the caller summary records (kind "callers"). */
  callers?: boolean;
  region?: string;
  /** Endpoint override (tests, VPC endpoints). */
  endpoint?: string;
  timeoutMs: number;
  /** Extra client settings (credentials in tests). */
  clientConfig?: CloudWatchLogsClientConfig;
  /** A client to use instead of building one (not closed by close()). */
  client?: CloudWatchLogsClient;
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : '';
}

/**
 * CloudWatch Logs through PutLogEvents: one log event per alert (and per caller summary record when
 * `callers` is set), its JSON as the message (Logs Insights parses it). The log group and stream are created on first use; ResourceAlreadyExists is
 * fine. The SDK's own retries are off: the pipeline retries with its backoff and keeps order.
 */
export function createCloudWatchLogsSink(opts: CloudWatchLogsOptions): AlertSink {
  const owned = opts.client === undefined;
  // The SDK (tens of MB and hundreds of ms to load) is imported on the first send, so a guard
  // without this sink never loads it, and one with it starts listening without waiting for it.
  let sdk: Promise<typeof import('@aws-sdk/client-cloudwatch-logs')> | undefined;
  let client = opts.client;
  let closed = false;
  const connect = async () => {
    sdk ??= import('@aws-sdk/client-cloudwatch-logs');
    const m = await sdk;
    if (client === undefined && !closed) {
      client = new m.CloudWatchLogsClient({
        ...(opts.region ? { region: opts.region } : {}),
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        maxAttempts: 1,
        ...opts.clientConfig,
      });
    }
    if (client === undefined)
      throw new SinkError(`cloudwatch logs ${opts.name}: closed`, { transient: false });
    return { m, client };
  };
  let ready = false;
  let lastTimestamp = 0;
  let stream = typeof opts.stream === 'string' ? opts.stream : undefined;
  const streamName = async (): Promise<string> => {
    if (stream === undefined && typeof opts.stream === 'function') stream = await opts.stream();
    return stream as string;
  };

  const ensure = async (): Promise<void> => {
    if (ready) return;
    const {
      m: { CreateLogGroupCommand, CreateLogStreamCommand },
      client,
    } = await connect();
    const logStreamName = await streamName();
    try {
      await client.send(new CreateLogGroupCommand({ logGroupName: opts.group }), {
        abortSignal: AbortSignal.timeout(opts.timeoutMs),
      });
    } catch (err) {
      if (errName(err) !== 'ResourceAlreadyExistsException') throw wrap(err, `CreateLogGroup ${opts.group}`);
    }
    try {
      await client.send(new CreateLogStreamCommand({ logGroupName: opts.group, logStreamName }), {
        abortSignal: AbortSignal.timeout(opts.timeoutMs),
      });
    } catch (err) {
      if (errName(err) !== 'ResourceAlreadyExistsException')
        throw wrap(err, `CreateLogStream ${logStreamName}`);
    }
    ready = true;
  };

  const wrap = (err: unknown, what: string): SinkError => {
    const name = errName(err);
    const permanent =
      name === 'AccessDeniedException' ||
      name === 'UnrecognizedClientException' ||
      name === 'InvalidParameterException';
    return new SinkError(
      `cloudwatch logs ${opts.name}: ${what}: ${name || 'error'}: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
        transient: !permanent,
      },
    );
  };

  return {
    name: opts.name,
    maxBatch: CLOUDWATCH_MAX_BATCH,
    kinds: opts.callers ? [...ALERT_KINDS, 'callers'] : ALERT_KINDS,
    async send(batch: readonly SpooledRecord[]) {
      if (batch.length === 0) return;
      await ensure();
      const {
        m: { PutLogEventsCommand },
        client,
      } = await connect();
      // Events in one call must be in time order; keep the spool's order and never go backwards.
      let ts = lastTimestamp;
      const logEvents = batch.map((a) => {
        const t = Date.parse(a.time);
        ts = Math.max(ts, Number.isNaN(t) ? Date.now() : t);
        return { timestamp: ts, message: JSON.stringify(a) };
      });
      try {
        await client.send(
          new PutLogEventsCommand({
            logGroupName: opts.group,
            logStreamName: await streamName(),
            logEvents,
          }),
          { abortSignal: AbortSignal.timeout(opts.timeoutMs) },
        );
      } catch (err) {
        if (errName(err) === 'ResourceNotFoundException') ready = false;
        throw wrap(err, 'PutLogEvents');
      }
      lastTimestamp = ts;
    },
    async close() {
      closed = true;
      if (owned) client?.destroy();
    },
  };
}
