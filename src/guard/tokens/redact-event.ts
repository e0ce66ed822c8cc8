import { emitEvent } from '../events/build.js';
import type { EventRecorder, GuardEvent } from '../events/types.js';
import type { OpenLedger } from './persist.js';
import { type KnownValues, Redactor } from './redact.js';

/**
 * Every event the guard writes goes through here once, before any recorder sees it: the command
 * line is redacted by value and by shape and bounded (Redactor.cmdline); every other string (path,
 * User-Agent, Host, reason, executables, errors) by value, so the secret and the tokens the guard
 * issued never reach a file, the store, an alert or stdout whatever header or argument carried them.
 */
export function redactEvent(event: GuardEvent, redactor: Redactor): GuardEvent {
  return walk(event, redactor) as GuardEvent;
}

function walk(x: unknown, r: Redactor): unknown {
  if (typeof x === 'string') return r.values(x);
  if (Array.isArray(x)) return x.map((v) => walk(v, r));
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) {
      out[k] =
        k === 'cmdline' && Array.isArray(v) && v.every((a) => typeof a === 'string')
          ? r.cmdline(v)
          : walk(v, r);
    }
    return out;
  }
  return x;
}

/** The redactor of a guard: its current and earlier secrets, its secret header's name, its ledger. */
export function guardRedactor(
  secrets: readonly string[],
  authHeader: string,
  tokens: KnownValues['tokens'],
): Redactor {
  const known: KnownValues = { secrets, secretNames: [authHeader] };
  if (tokens) known.tokens = tokens;
  return new Redactor(known);
}

/** Secrets remembered across reloads (a command line may still hold an earlier one). */
export const MAX_REMEMBERED_SECRETS = 4;

/** The guard's redaction: its secrets (current and a few earlier ones), its secret header, its ledger. */
export class GuardRedaction {
  readonly #ledger: OpenLedger;
  #secrets: string[] = [];
  #redactor: Redactor;

  constructor(ledger: OpenLedger, authSecret: string | undefined, authHeader: string) {
    this.#ledger = ledger;
    this.#redactor = this.configure(authSecret, authHeader);
  }

  /** After a reload: the new secret and header name join (earlier secrets stay, a few). */
  configure(authSecret: string | undefined, authHeader: string): Redactor {
    if (authSecret !== undefined && !this.#secrets.includes(authSecret)) {
      this.#secrets = [authSecret, ...this.#secrets].slice(0, MAX_REMEMBERED_SECRETS);
    }
    const l = this.#ledger;
    this.#redactor = guardRedactor(this.#secrets, authHeader, {
      hasher: l.hasher,
      hasFingerprint: (f) => l.ledger.hasFingerprint(f),
      hasPrefix: (h) => l.ledger.hasPrefix(h),
      any: () => l.ledger.size > 0,
    });
    return this.#redactor;
  }

  event(e: GuardEvent): GuardEvent {
    return redactEvent(e, this.#redactor);
  }

  text(s: string): string {
    return this.#redactor.values(s);
  }

  /** One recorder that redacts each event once, then hands it to every recorder (emitEvent). */
  recorder(recorders: readonly EventRecorder[], log: (m: string) => void): EventRecorder {
    return {
      record: (e) => emitEvent(recorders, this.event(e), log),
      // the recorders are their owner's to close (wire.ts)
      close: async () => {},
    };
  }
}
