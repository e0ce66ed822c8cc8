import type { ClassifiedRequest } from '../../imds/classify.js';
import type { Caller } from '../attribution/types.js';
import type { DecisionKind } from '../events/types.js';

/**
 * Which step of the policy decided: a protocol check (step 1 of compile.ts, or a limit the proxy
 * enforces), a configured rule (guard.rules), or the built-in default (IMDSv2, the tokenless
 * defaults, container tokens).
 */
export const DECIDED_BY = ['protocol', 'rule', 'default'] as const;
export type DecidedBy = (typeof DECIDED_BY)[number];

/** What the policy decided for one request. */
export interface Decision {
  decision: DecisionKind;
  /** The rule that decided, e.g. "forwarding-header", "imdsv2", "ua-allowlist", "default-deny-v1". */
  rule: string;
  /** A sentence for a person (never contains secrets or token values). */
  reason: string;
  /** HTTP status of the refusal when decision is deny (IMDS-like); 200 placeholder for allow. */
  status: number;
  /** Whether the event should raise an alert (every deny; allow rules with alert: true). */
  alert: boolean;
  by: DecidedBy;
  /**
   * A deny that holds in every mode: the request cannot be forwarded or answered safely (CONNECT,
   * ambiguous framing, a malformed target, a body over the limit). Monitor refuses it too, and trap
   * does not answer it.
   */
  everyMode: boolean;
}

/** A policy compiled once from config. decide() is pure: no I/O, no clock, no environment. */
export interface Policy {
  /**
   * Decides a classified request. `caller` is what attribution found (undefined when it did not run);
   * a rule that needs an unknown fact of the caller denies with rule `attribution-required`.
   */
  decide(request: ClassifiedRequest, caller?: Caller): Decision;
  /** Whether deciding this request may depend on the caller (attribution must be awaited). */
  needsCaller(request: ClassifiedRequest): boolean;
  /** Whether any rule of this policy looks at the caller at all. */
  readonly usesCaller: boolean;
}
