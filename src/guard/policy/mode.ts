import type { Action, GuardMode } from '../events/types.js';
import type { Decision } from './types.js';

/**
 * What the guard does with a decision in a mode. Pure.
 *
 * - a deny that holds in every mode (Decision.everyMode) is refused, whatever the mode;
 * - trap answers everything else from the trap;
 * - enforce refuses a deny, monitor forwards it and flags it;
 * - an allow is forwarded (enforce, monitor).
 * Every refusal, flag and trap answer alerts; an allow alerts when its rule says so.
 */
export interface ModeOutcome {
  action: Extract<Action, 'forwarded' | 'refused' | 'flagged' | 'trapped'>;
  alert: boolean;
}

export function applyMode(decision: Decision, mode: GuardMode): ModeOutcome {
  const deny = decision.decision === 'deny';
  if (deny && decision.everyMode) return { action: 'refused', alert: true };
  if (mode === 'trap') return { action: 'trapped', alert: true };
  if (deny) return { action: mode === 'enforce' ? 'refused' : 'flagged', alert: true };
  return { action: 'forwarded', alert: decision.alert };
}

/** A deny decided by the proxy itself (a limit, a request that cannot be sent), refused in every mode. */
export function protocolDeny(rule: string, reason: string, status: number): Decision {
  return { decision: 'deny', rule, reason, status, alert: true, by: 'protocol', everyMode: true };
}
