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
  send(batch: readonly Alert[]): Promise<void>;
  close(): Promise<void>;
}

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
