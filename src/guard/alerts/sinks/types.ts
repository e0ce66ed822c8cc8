import type { Alert } from '../alert.js';

/**
 * Where alerts go. One small interface; every implementation passes the contract suite in
 * test/support/sink-contract.ts.
 *
 * send() delivers a batch in order (at most maxBatch alerts) and resolves only when the receiver has
 * accepted all of it; otherwise it rejects, preferably with a SinkError, and the pipeline retries the
 * same batch later. send() is never called concurrently on one sink.
 */
export interface AlertSink {
  /** Stable name: the spool keeps each sink's cursor under it, metrics label by it. No secrets. */
  readonly name: string;
  /** Most alerts per send() call. */
  readonly maxBatch: number;
  /**
   * The record kinds this sink receives (default ALERT_KINDS). A sink that adds "callers" also gets
   * the caller summary records (src/guard/callers/interval.ts), passed to send() like alerts.
   */
  readonly kinds?: readonly SpooledRecord['kind'][];
  send(batch: readonly Alert[]): Promise<void>;
  close(): Promise<void>;
}

/** What the spool holds: alerts, and records of other kinds that some sinks take. */
export interface SpooledRecord {
  kind: 'event' | 'summary' | 'callers';
  /** ISO 8601. */
  time: string;
}

/** What a sink receives unless it says otherwise: the alerts. */
export const ALERT_KINDS: readonly SpooledRecord['kind'][] = ['event', 'summary'];

/** A failed delivery. retryAfterMs: the receiver asked to wait (HTTP 429 Retry-After). */
export class SinkError extends Error {
  readonly retryAfterMs: number | undefined;
  /** false when retrying the same request cannot help (bad token, unknown channel): still retried, but reported. */
  readonly transient: boolean;

  constructor(message: string, opts: { retryAfterMs?: number; transient?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SinkError';
    this.retryAfterMs = opts.retryAfterMs;
    this.transient = opts.transient ?? true;
  }
}
