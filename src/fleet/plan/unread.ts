/**
 * PURE: nothing is changed where the scan could not read what the change needs. Every item of an
 * account and region in `unread` ("ACCOUNT/REGION") that would be sent, blocked, or judged gone
 * (not-found: it may only be unread) becomes a skip with reason scan-failed.
 */
import { type ChangePlan, skip } from './types.js';

export function skipUnread(plan: ChangePlan, unread: ReadonlySet<string>): ChangePlan {
  if (unread.size === 0) return plan;
  return {
    ...plan,
    items: plan.items.map((it) => {
      if (!unread.has(`${it.accountId}/${it.region}`)) return it;
      if (it.action === 'skip' && it.skip?.reason !== 'not-found') return it;
      const { blocked: _blocked, ...rest } = it;
      return { ...rest, action: 'skip', skip: skip('scan-failed') };
    }),
  };
}
