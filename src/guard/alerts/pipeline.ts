import { ImdsguardError } from '../../errors.js';
import type { EventRecorder, GuardEvent } from '../events/types.js';
import { type Alert, toAlert } from './alert.js';
import { DEFAULT_NOISE, NoiseFilter, type NoiseOptions } from './noise.js';
import { ALERT_KINDS, type AlertSink, SinkError, type SpooledRecord } from './sinks/types.js';
import { Spool, type SpoolOptions, type SpoolRow, type SpoolStats } from './spool.js';

/**
 * The alert pipeline. record() (synchronous, never throws, never waits) puts the event in a bounded
 * in-memory queue. On the next turn of the event loop the queue is drained: alerts pass the noise
 * filter and are appended to the durable spool in one transaction. One worker per sink reads the spool
 * after its own cursor, sends a batch, and advances the cursor only when the sink accepted it; a failed
 * batch is retried with exponential backoff and jitter (or after the receiver's Retry-After). So each
 * sink gets every alert, in order, at least once, across outages and restarts.
 */

export interface RetryOptions {
  /** First retry delay, milliseconds. */
  initialMs: number;
  /** Longest retry delay, milliseconds. */
  maxMs: number;
  /** Growth factor per failed attempt. */
  factor: number;
  /** 0..1: a delay d becomes d * (1 - jitter * random()). */
  jitter: number;
}

export const DEFAULT_RETRY: RetryOptions = { initialMs: 1000, maxMs: 300_000, factor: 2, jitter: 0.5 };

export interface PipelineOptions {
  sinks: readonly AlertSink[];
  spool: SpoolOptions;
  /** Do not alert on allowed requests (metatrapd's -quiet). */
  quiet: boolean;
  /** Events held in memory before the spool, count; beyond it they are dropped and counted. */
  queueSize: number;
  noise?: NoiseOptions;
  retry?: RetryOptions;
  /** How long close() lets the sinks catch up before leaving the rest in the spool, milliseconds. */
  drainTimeoutMs?: number;
  /** How often closed noise windows become summaries and sink cursors are saved, milliseconds (default 1000). */
  tickMs?: number;
  /** How long queued events wait to be spooled together, milliseconds (default 10). */
  flushMs?: number;
  /** How long a worker waits for more alerts before sending a batch smaller than maxBatch, milliseconds (default 25). */
  lingerMs?: number;
  now?: () => number;
  random?: () => number;
  /** Called on sink failures and recoveries (state changes only, not every retry). Never gets secrets. */
  log?: (message: string) => void;
}

export interface SinkStats {
  name: string;
  /** Alerts in the spool this sink has not accepted yet. */
  backlog: number;
  delivered: number;
  failures: number;
  /** The last error, while the sink is failing. */
  lastError?: string;
}

export interface PipelineStats {
  /** Events in the in-memory queue. */
  queueDepth: number;
  /** Events dropped because the in-memory queue was full. */
  queueDropped: number;
  /** Alerts the noise filter suppressed (each counted in a summary). */
  suppressed: number;
  /** Alerts that entered the spool. */
  spooled: number;
  spool: SpoolStats;
  sinks: SinkStats[];
}

interface Worker {
  sink: AlertSink;
  delivered: number;
  failures: number;
  attempt: number;
  lastError?: string;
  wake?: () => void;
  done?: Promise<void>;
}

/** Exponential backoff with jitter; a Retry-After (milliseconds) wins when longer. */
export function backoffDelay(
  attempt: number,
  retry: RetryOptions,
  random: () => number,
  retryAfterMs?: number,
): number {
  const base = Math.min(retry.maxMs, retry.initialMs * retry.factor ** Math.max(0, attempt - 1));
  const jittered = base * (1 - retry.jitter * random());
  return retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered;
}

/** Whether an event raises an alert: every event flagged `alert`, and allowed requests unless quiet. */
export function shouldAlert(event: GuardEvent, quiet: boolean): boolean {
  return event.alert || (!quiet && event.decision === 'allow');
}

export class AlertPipeline implements EventRecorder {
  private readonly opts: PipelineOptions;
  private readonly spool: Spool;
  private readonly noise: NoiseFilter;
  private readonly retry: RetryOptions;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly workers: Worker[];
  private queue: GuardEvent[] = [];
  private queueDropped = 0;
  private spooled = 0;
  private flushScheduled = false;
  private closing = false;
  private stopping = false;
  private spoolClosed = false;
  private readonly abort = new AbortController();
  private readonly ticker: NodeJS.Timeout;
  private closed?: Promise<void>;

  constructor(opts: PipelineOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.noise = new NoiseFilter(opts.noise ?? DEFAULT_NOISE, this.now());
    const names = new Set<string>();
    for (const s of opts.sinks) {
      if (names.has(s.name)) {
        throw new ImdsguardError('IMDSGUARD_E_CONFIG', `alerts: two sinks are named "${s.name}"`, {
          hint: 'the same target twice, or the same name: remove the duplicate or set a different name',
        });
      }
      names.add(s.name);
    }
    this.spool = new Spool(opts.spool);
    this.spool.register([...names]);
    this.workers = opts.sinks.map((sink) => ({ sink, delivered: 0, failures: 0, attempt: 0 }));
    for (const w of this.workers) w.done = this.run(w);
    this.ticker = setInterval(() => this.tick(), opts.tickMs ?? 1000);
    this.ticker.unref();
  }

  record(event: GuardEvent): void {
    if (this.closing || !shouldAlert(event, this.opts.quiet)) return;
    if (this.queue.length >= this.opts.queueSize) {
      this.queueDropped += 1;
      return;
    }
    this.queue.push(event);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(() => this.flush(), this.opts.flushMs ?? 10);
    }
  }

  /** Whether some sink receives records of this kind. */
  takes(kind: SpooledRecord['kind']): boolean {
    return this.workers.some((w) => (w.sink.kinds ?? ALERT_KINDS).includes(kind));
  }

  /**
   * Appends records that are not alerts (the caller summary, kind "callers") straight to the spool:
   * no noise filter, no quiet rule. Only sinks whose `kinds` name the record's kind receive them.
   */
  publish(records: readonly SpooledRecord[]): void {
    if (this.spoolClosed) return;
    this.append(records);
  }

  /** Moves the in-memory queue through the noise filter into the spool, and wakes the workers. */
  flush(): void {
    this.flushScheduled = false;
    if (this.spoolClosed) return;
    const events = this.queue;
    this.queue = [];
    const now = this.now();
    const alerts: Alert[] = [];
    for (const e of events) alerts.push(...this.noise.offer(toAlert(e), now));
    this.append(alerts);
  }

  private tick(): void {
    if (this.spoolClosed) return;
    this.append(this.noise.tick(this.now()));
    try {
      this.spool.persist();
    } catch (err) {
      this.opts.log?.(`alert spool: cannot save sink cursors: ${(err as Error).message}`);
    }
  }

  private append(alerts: readonly SpooledRecord[]): void {
    if (alerts.length === 0) return;
    try {
      this.spool.append(alerts.map((a) => JSON.stringify(a)));
      this.spooled += alerts.length;
    } catch (err) {
      // The spool is unwritable (disk full, removed): these alerts are lost; count them and say so.
      this.queueDropped += alerts.length;
      this.opts.log?.(
        `alert spool: cannot write, ${alerts.length} alerts dropped: ${(err as Error).message}`,
      );
    }
    for (const w of this.workers) w.wake?.();
  }

  private async run(w: Worker): Promise<void> {
    // Let the constructor finish before the first read.
    await Promise.resolve();
    // The batch being delivered: kept across retries so a failing sink does not re-read the spool.
    let rows: SpoolRow[] = [];
    let batch: Alert[] = [];
    let droppedAtRead = 0;
    while (!this.stopping && !this.spoolClosed) {
      // Re-read when the spool dropped old alerts meanwhile (they may be in the batch held).
      if (rows.length === 0 || this.spool.stats().dropped !== droppedAtRead) {
        droppedAtRead = this.spool.stats().dropped;
        rows = this.spool.read(w.sink.name, w.sink.maxBatch);
        const kinds = w.sink.kinds ?? ALERT_KINDS;
        batch = rows
          .map((r) => JSON.parse(r.body) as Alert)
          .filter((a) => (kinds as readonly string[]).includes(a.kind));
        if (rows.length > 0 && batch.length === 0) {
          // Nothing here for this sink (records of kinds it does not take): pass them.
          this.spool.ack(w.sink.name, (rows[rows.length - 1] as SpoolRow).seq);
          rows = [];
          continue;
        }
      }
      if (rows.length === 0) {
        if (this.closing) return;
        await new Promise<void>((resolve) => {
          w.wake = resolve;
        });
        w.wake = undefined;
        // Let a burst gather into one batch (fewer requests, fewer writes).
        if (!this.closing && (this.opts.lingerMs ?? 25) > 0) await this.sleep(this.opts.lingerMs ?? 25);
        continue;
      }
      try {
        await w.sink.send(batch);
      } catch (err) {
        w.failures += 1;
        w.attempt += 1;
        const message = err instanceof Error ? err.message : String(err);
        if (w.lastError === undefined) this.opts.log?.(`alert sink ${w.sink.name} failing: ${message}`);
        w.lastError = message;
        if (this.closing) return;
        const retryAfter = err instanceof SinkError ? err.retryAfterMs : undefined;
        await this.sleep(backoffDelay(w.attempt, this.retry, this.random, retryAfter));
        continue;
      }
      if (this.spoolClosed) return;
      const last = rows[rows.length - 1] as SpoolRow;
      this.spool.ack(w.sink.name, last.seq);
      w.delivered += rows.length;
      rows = [];
      batch = [];
      if (w.lastError !== undefined) this.opts.log?.(`alert sink ${w.sink.name} recovered`);
      w.lastError = undefined;
      w.attempt = 0;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.abort.signal;
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  stats(): PipelineStats {
    const spool = this.spoolClosed ? { alerts: 0, bytes: 0, dropped: 0 } : this.spool.stats();
    return {
      queueDepth: this.queue.length,
      queueDropped: this.queueDropped,
      suppressed: this.noise.suppressed,
      spooled: this.spooled,
      spool,
      sinks: this.workers.map((w) => {
        const s: SinkStats = {
          name: w.sink.name,
          backlog: this.spoolClosed ? 0 : this.spool.backlog(w.sink.name),
          delivered: w.delivered,
          failures: w.failures,
        };
        if (w.lastError !== undefined) s.lastError = w.lastError;
        return s;
      }),
    };
  }

  /** Whether the spool accepts writes (for /readyz). */
  isWritable(): boolean {
    return !this.spoolClosed && this.spool.isWritable();
  }

  /**
   * Stops taking events, spools what is queued (and the summaries of open noise windows), lets the
   * sinks catch up for at most drainTimeoutMs, then closes. What is not delivered stays in the spool
   * for the next start.
   */
  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    clearInterval(this.ticker);
    this.flush();
    this.append(this.noise.flush(this.now()));
    for (const w of this.workers) w.wake?.();
    const all = Promise.all(this.workers.map((w) => w.done));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.opts.drainTimeoutMs ?? 5000);
    });
    await Promise.race([all, deadline]);
    clearTimeout(timer);
    this.stopping = true;
    this.abort.abort();
    for (const w of this.workers) w.wake?.();
    this.spoolClosed = true;
    this.spool.close();
    await Promise.allSettled(this.opts.sinks.map((s) => s.close()));
  }
}
