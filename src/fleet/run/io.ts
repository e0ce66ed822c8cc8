/**
 * What a fleet use case may touch of the outside world besides AWS: where its notices go, a yes/no
 * question, and the signal that stops it. The CLI builds one from its context; tests build their own.
 */
import { ImdsguardError } from '../../errors.js';
import type { Output } from '../../io/output.js';
import type { ScanFailure } from '../inventory/model.js';

export interface RunIo {
  /** Notices, warnings and the progress line (stderr in the CLI). */
  readonly output: Output;
  /** Asks a yes/no question; resolves false when nobody can answer (no terminal). */
  confirm(question: string): Promise<boolean>;
  /** Aborted when the user stops the run (Ctrl-C); its reason names the signal. */
  readonly signal: AbortSignal;
}

/** Failures printed before "... more in the output". */
export const FAILURES_SHOWN = 20;

/**
 * The one printout of partial failures: a heading with their number, then one line each (at most
 * FAILURES_SHOWN). `heading` follows "N <noun>(s);", for example "every other account and region was
 * scanned". `listedInOutput`: the document printed on stdout lists them all (default true).
 */
export function printFailures(
  io: Pick<RunIo, 'output'>,
  failures: ReadonlyArray<Pick<ScanFailure, 'accountId' | 'region' | 'message' | 'code'> & { stage: string }>,
  heading: string,
  opts: { noun?: string; listedInOutput?: boolean } = {},
): void {
  const noun = opts.noun ?? 'partial failure';
  if (failures.length === 0) return;
  io.output.write(`imdsguard: ${failures.length} ${noun}(s); ${heading}:\n`);
  for (const f of failures.slice(0, FAILURES_SHOWN)) {
    io.output.write(`  ${f.accountId ?? '-'} ${f.region ?? '-'} ${f.stage}: ${f.message} [${f.code}]\n`);
  }
  if (failures.length > FAILURES_SHOWN) {
    const where = (opts.listedInOutput ?? true) ? ' in the output' : '';
    io.output.write(`  ... ${failures.length - FAILURES_SHOWN} more${where}\n`);
  }
}

/** The name of the signal that stopped the run (the abort reason), for messages. */
export function stopReason(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : 'a stop request';
}

/**
 * Resolves as `work` does, or rejects with IMDSGUARD_E_INTERRUPTED ("stopped by SIGINT before
 * <what>; nothing was written") as soon as `signal` aborts. `work` is abandoned, not cancelled.
 */
export function unlessStopped<T>(work: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  const interrupted = () =>
    new ImdsguardError(
      'IMDSGUARD_E_INTERRUPTED',
      `stopped by ${stopReason(signal)} before ${what}; nothing was written`,
    );
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(interrupted());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(interrupted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
