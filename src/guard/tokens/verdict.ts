import type { Decision } from '../policy/types.js';
import type { TokenStatus } from './ledger.js';

/**
 * What a token's status does to the policy's decision. Pure.
 *
 * guard.unknownToken decides for a token this guard never issued:
 *   allow  the policy's decision stands (the upstream still checks the token);
 *   flag   forwarded as the policy decided (its rule stays), with an alert and a reason that says so;
 *   deny   refused with IMDS's own answer to a bad token, 401 (rule unknown-token); monitor flags it.
 * An expired token is forwarded as the policy decided: the upstream refuses it (401) as IMDS does.
 * A policy deny is never changed.
 */

export const UNKNOWN_TOKEN_ACTIONS = ['allow', 'flag', 'deny'] as const;
export type UnknownTokenAction = (typeof UNKNOWN_TOKEN_ACTIONS)[number];

export const UNKNOWN_TOKEN_RULE = 'unknown-token';
export const OTHER_CALLER_RULE = 'token-other-caller';

export function tokenDecision(decision: Decision, status: TokenStatus, action: UnknownTokenAction): Decision {
  if (decision.decision !== 'allow' || status !== 'unknown' || action === 'allow') return decision;
  const why = 'the token was not issued through this guard (forged, guessed, or older than its ledger)';
  if (action === 'deny')
    return {
      decision: 'deny',
      rule: UNKNOWN_TOKEN_RULE,
      reason: `${why}; guard.unknownToken is deny`,
      status: 401,
      alert: true,
      by: 'default',
      everyMode: false,
    };
  return { ...decision, reason: `${decision.reason}; flagged: ${why}`, alert: true };
}

/** The decision of an allowed request whose token another caller than its holder used: an alert. */
export function otherCallerDecision(decision: Decision, why: string): Decision {
  if (decision.decision !== 'allow') return decision;
  return {
    ...decision,
    rule: OTHER_CALLER_RULE,
    reason: `${decision.reason}; a token used by another caller than the one it was issued to (token theft?): ${why}`,
    alert: true,
  };
}
