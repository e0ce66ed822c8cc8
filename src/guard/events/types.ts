import type { ImdsVersion } from '../../imds/version.js';
import type { Caller } from '../attribution/types.js';
import type { EventToken } from '../tokens/guard.js';

/**
 * The guard's event: one per request. docs/events.md documents every field.
 * Never put secrets here: no auth secret, no token values, no credential bodies, no user-data.
 */

export const GUARD_MODES = ['enforce', 'monitor', 'trap'] as const;
export type GuardMode = (typeof GUARD_MODES)[number];

export const DECISIONS = ['allow', 'deny'] as const;
export type DecisionKind = (typeof DECISIONS)[number];

/** What the guard did with the request. */
export const ACTIONS = ['forwarded', 'refused', 'flagged', 'trapped', 'error'] as const;
export type Action = (typeof ACTIONS)[number];

export interface GuardEvent {
  /** Schema version of this event. */
  v: 1;
  /** Unique id (time-ordered). */
  id: string;
  /** ISO 8601 time the request arrived. */
  time: string;
  host: string;
  mode: GuardMode;
  /** The policy's decision. In monitor mode a deny is flagged, not refused. */
  decision: DecisionKind;
  action: Action;
  /** The rule that decided, e.g. "forwarding-header", "imdsv2", "ua-allowlist", "default-deny-v1". */
  rule: string;
  /** A sentence for a person. */
  reason: string;
  request: {
    method: string;
    /** The normalized path, as the upstream would see it (no query string). */
    path: string;
    userAgent?: string;
    hostHeader?: string;
    version: ImdsVersion;
    flavor: string;
    client: { address: string; port: number };
  };
  /** Status code the guard sent to the client. */
  status: number;
  upstream?: {
    status?: number;
    latencyMs?: number;
    error?: 'unreachable' | 'timeout' | 'reset' | 'truncated' | 'too-large';
  };
  caller?: Caller;
  /**
   * The token the request carried (or its answer issued): issued-here, unknown, expired or
   * other-caller, from the token ledger (never the token itself).
   */
  token?: EventToken;
  /** Whether this event should raise an alert (deny, flag, trap, or a configured path rule). */
  alert: boolean;
  /** Total time in the guard, milliseconds. */
  durationMs?: number;
  /** Time spent finding the caller, milliseconds (absent when attribution is off). */
  attributionMs?: number;
}

/**
 * Where the guard sends its events. record() must never block or throw: implementations buffer
 * (bounded) and do their I/O off the request path.
 */
export interface EventRecorder {
  record(event: GuardEvent): void;
  /** Flushes what is buffered and releases resources. */
  close(): Promise<void>;
}
