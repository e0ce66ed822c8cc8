/**
 * PURE: plans know what AWS would refuse before anything is sent. markBlocked turns every such change
 * into `action: 'blocked'` with the reason, so the run never fails halfway through on it:
 *
 *   - an instance change that leaves HttpTokens other than `required`, in a region that enforces IMDSv2
 *     (HttpTokensEnforced=enabled): AWS answers UnsupportedOperation to HttpTokens=optional there. A
 *     rollback of a harden, `fleet relax`, but also a hop-limit or disable change on an instance still
 *     on optional (the change sends HttpTokens=optional to keep it);
 *   - a launch template restore to a version that asks for HttpTokens=optional under enforcement (its
 *     launches would be refused);
 *   - any account-defaults change in a region whose defaults an AWS Organizations declarative policy
 *     manages (the account cannot change them; the detail quotes the policy's exception message);
 *   - an account-defaults change that would leave HttpTokens=optional as the default with enforcement
 *     on (every launch that relies on the default would be refused; imdsguard's own safety rule, not
 *     an AWS refusal: `--set required --enforce` changes both).
 *
 * A region whose defaults could not be read blocks nothing: there, AWS's own answer decides.
 */

import type { RegionScan } from '../inventory/model.js';
import { enforcementByRegion, type RegionEnforcement } from '../posture/enforcement.js';
import type { BlockInfo, ChangePlan, PlanItem } from './types.js';

type ScanState = Pick<RegionScan, 'accountId' | 'region' | 'defaults' | 'defaultsManagement'>;

function enforced(s: RegionEnforcement): string {
  return `account ${s.accountId} ${s.region} enforces IMDSv2 (HttpTokensEnforced=enabled${s.managedBy === 'declarative-policy' ? ', set by an AWS Organizations declarative policy' : ''})`;
}

function undo(s: RegionEnforcement): string {
  return s.managedBy === 'declarative-policy'
    ? `the policy's owners must change it${s.exceptionMessage ? `; the policy says: "${s.exceptionMessage}"` : ''}`
    : `turn enforcement off first (imdsguard fleet defaults --no-enforce --regions ${s.region}) if this is really wanted`;
}

/** Why AWS would refuse this item in this region, or null. */
export function blockFor(item: PlanItem, state: RegionEnforcement | undefined): BlockInfo | null {
  if (!state) return null;
  if (item.type === 'account-defaults') {
    if (state.managedBy === 'declarative-policy') {
      return {
        reason: 'managed-by-policy',
        detail: `an AWS Organizations declarative policy manages the IMDS defaults of account ${item.accountId} ${item.region}: the account cannot change them${state.exceptionMessage ? `; the policy says: "${state.exceptionMessage}"` : ''}`,
      };
    }
    if (item.after.httpTokensEnforced === 'enabled' && item.after.httpTokens === 'optional') {
      return {
        reason: 'tokens-enforced',
        detail: `HttpTokens=optional as the default with enforcement on: every launch that relies on the default would be refused in account ${item.accountId} ${item.region}; set both (fleet defaults --set required --enforce)`,
      };
    }
    return null;
  }
  if (state.enforcement !== 'enabled') return null;
  if (item.type === 'instance' && item.after.httpTokens !== 'required') {
    // A change that keeps an instance on optional (disable, hop-limit): hardening it first lets it go
    // ahead; a change that sets optional (a rollback, relax) needs enforcement off.
    const keeps = item.before.httpTokens === 'optional' && item.after.httpTokens === 'optional';
    const next = keeps
      ? `harden it first (imdsguard fleet harden --instances ${item.resourceId} --regions ${item.region}), then run this change again`
      : undo(state);
    return {
      reason: 'tokens-enforced',
      detail: `${enforced(state)}: AWS refuses HttpTokens=${item.after.httpTokens ?? '(unset)'} on ${item.resourceId} (UnsupportedOperation); ${next}`,
    };
  }
  if (
    item.type === 'launch-template' &&
    item.after.op === 'restore' &&
    item.after.metadataOptions?.httpTokens === 'optional'
  ) {
    return {
      reason: 'tokens-enforced',
      detail: `${enforced(state)}: version ${item.after.defaultVersion} of ${item.resourceId} asks for HttpTokens=optional, so every launch from it would be refused; ${undo(state)}`,
    };
  }
  return null;
}

/** A copy of the plan where every change AWS would refuse is blocked, with its reason. */
export function markBlocked(plan: ChangePlan, scans: readonly ScanState[]): ChangePlan {
  const states = enforcementByRegion(scans);
  return {
    ...plan,
    items: plan.items.map((it) => {
      if (it.action !== 'change') return it;
      const b = blockFor(it, states.get(`${it.accountId}/${it.region}`));
      return b ? { ...it, action: 'blocked' as const, blocked: b } : it;
    }),
  };
}
