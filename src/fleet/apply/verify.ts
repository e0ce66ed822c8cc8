/**
 * Reading changed resources back, with the same retries and pacing as every other call of the run
 * (the API's clients carry the rate limiter and the SDK retries; withThrottleRetries adds the rounds):
 *
 *   verification   after the apply, every applied item: verified (equal to the plan), mismatch
 *                  (different), or unverified (the read failed after every retry, or the change still
 *                  reads `pending` on a running instance after `pendingRounds` more reads);
 *   settlement     right after an ambiguous failure (a cut connection, a timeout, a 5xx): applied (the
 *                  change is in place), not-applied (unchanged), or undecided (neither, or the read
 *                  failed) which stays `failed`.
 *
 * The comparisons (checkInstance, settleItem) are pure.
 */
import { errorMessage, ImdsguardError } from '../../errors.js';
import { mapBounded } from '../aws/concurrency.js';
import type { AccountDefaultsRecord } from '../inventory/model.js';
import type { ItemResult, ItemStatus } from '../journal/store.js';
import { sameDefaults } from '../plan/defaults.js';
import { type InstanceItem, matchesTarget, metadataValues, type PlanItem } from '../plan/types.js';
import type { FleetChangeApi, InstanceReadBack, TemplateReadBack, Where } from './api.js';
import type { Clock } from './rate-limit.js';
import { withThrottleRetries } from './retry.js';

/** Defaults, with units. */
export const VERIFY_DEFAULTS = {
  /** Extra reads of instances whose change still reads `pending` (running instances only). */
  pendingRounds: 3,
  /** First wait before such a read, ms (doubles each round). */
  pendingBackoffMs: 2000,
} as const;

export interface ReadContext {
  api: FleetChangeApi;
  clock: Clock;
  random: () => number;
  throttleRetries?: number | undefined;
  throttleBackoffMs?: number | undefined;
  groupConcurrency: number;
  pendingRounds?: number | undefined;
  pendingBackoffMs?: number | undefined;
}

/** Records an item's status (the applier's journal + outcome + change log writer). */
export type Recorder = (
  item: PlanItem,
  status: ItemStatus,
  err?: { code: string; message: string },
  result?: ItemResult,
) => void;

export type InstanceCheck = 'verified' | 'pending' | 'mismatch' | 'missing';

/**
 * PURE: one instance read back against the options it should have. A change on an instance that is not
 * running (stopped, stopping, or still launching) reads `pending` until it runs (EC2 API reference:
 * "When you modify the parameters on a stopped instance, they are applied when the instance is
 * started"): its values are set, so it counts as verified. On a running instance `pending` means the
 * change is not in effect yet.
 */
export function checkInstance(got: InstanceReadBack | undefined, item: InstanceItem): InstanceCheck {
  if (!got) return 'missing';
  if (!matchesTarget(metadataValues(got.metadataOptions), item.after)) return 'mismatch';
  if (got.metadataOptions.state === 'pending' && got.instanceState === 'running') return 'pending';
  return 'verified';
}

/** What a read-back of any item type saw. */
export type Observed =
  | { type: 'instance'; value: InstanceReadBack | undefined }
  | { type: 'launch-template'; value: TemplateReadBack }
  | { type: 'account-defaults'; value: AccountDefaultsRecord };

/**
 * PURE: after an ambiguous failure, whether the item's change is in place (applied), not (not-applied:
 * the resource is as before), or neither (undecided: someone else changed it, or it is gone).
 */
export function settleItem(item: PlanItem, seen: Observed): 'applied' | 'not-applied' | 'undecided' {
  if (item.type === 'instance' && seen.type === 'instance') {
    if (!seen.value) return 'undecided';
    const now = metadataValues(seen.value.metadataOptions);
    if (matchesTarget(now, item.after)) return 'applied';
    return matchesTarget(now, item.before) ? 'not-applied' : 'undecided';
  }
  if (item.type === 'launch-template' && seen.type === 'launch-template') {
    const t = seen.value;
    if (item.after.op === 'restore') {
      if (t.defaultVersion === item.after.defaultVersion) return 'applied';
      return t.defaultVersion === item.before.defaultVersion ? 'not-applied' : 'undecided';
    }
    if (t.defaultVersion === item.before.defaultVersion) return 'not-applied';
    return t.defaultVersion > item.before.defaultVersion && t.metadataOptions?.httpTokens === 'required'
      ? 'applied'
      : 'undecided';
  }
  if (item.type === 'account-defaults' && seen.type === 'account-defaults') {
    if (sameDefaults(seen.value, item.after)) return 'applied';
    return sameDefaults(seen.value, item.before) ? 'not-applied' : 'undecided';
  }
  return 'undecided';
}

function where(item: PlanItem): Where {
  return { accountId: item.accountId, region: item.region };
}

function retried<T>(ctx: ReadContext, call: () => Promise<T>): Promise<T> {
  return withThrottleRetries(call, {
    rounds: ctx.throttleRetries,
    backoffMs: ctx.throttleBackoffMs,
    clock: ctx.clock,
    random: ctx.random,
  });
}

/** Reads one item back (retried like every call). Throws when the read still fails. */
export async function readItem(ctx: ReadContext, item: PlanItem): Promise<Observed> {
  const w = where(item);
  if (item.type === 'instance') {
    const m = await retried(ctx, () => ctx.api.readInstanceMetadata(w, [item.resourceId]));
    return { type: 'instance', value: m.get(item.resourceId) };
  }
  if (item.type === 'launch-template') {
    return {
      type: 'launch-template',
      value: await retried(ctx, () => ctx.api.readTemplate(w, item.resourceId)),
    };
  }
  return { type: 'account-defaults', value: await retried(ctx, () => ctx.api.readAccountDefaults(w)) };
}

function readFailure(err: unknown): { code: string; message: string } {
  return {
    code: 'IMDSGUARD_E_CHANGE_UNVERIFIED',
    message: `the read-back failed after every retry, so the change could not be confirmed: ${errorMessage(err)}`,
  };
}

function mismatchError(item: PlanItem, what: string): { code: string; message: string } {
  const e = new ImdsguardError(
    'IMDSGUARD_E_CHANGE_FAILED',
    `account ${item.accountId} ${item.region} ${item.resourceId}: read back ${what}`,
  );
  return { code: e.code, message: e.message };
}

/** Verifies the instance items of one account + region: batch reads, then re-reads of pending ones. */
async function verifyInstances(ctx: ReadContext, items: InstanceItem[], record: Recorder): Promise<void> {
  const first = items[0] as InstanceItem;
  const w = where(first);
  let left = items;
  let backoff = ctx.pendingBackoffMs ?? VERIFY_DEFAULTS.pendingBackoffMs;
  const rounds = ctx.pendingRounds ?? VERIFY_DEFAULTS.pendingRounds;
  for (let round = 0; left.length > 0; round++) {
    let seen: Map<string, InstanceReadBack>;
    try {
      seen = await retried(ctx, () =>
        ctx.api.readInstanceMetadata(
          w,
          left.map((i) => i.resourceId),
        ),
      );
    } catch (err) {
      for (const it of left) record(it, 'unverified', readFailure(err));
      return;
    }
    const pending: InstanceItem[] = [];
    for (const it of left) {
      const got = seen.get(it.resourceId);
      const check = checkInstance(got, it);
      if (check === 'verified') record(it, 'verified', undefined, { observed: got });
      else if (check === 'pending') pending.push(it);
      else
        record(
          it,
          'mismatch',
          mismatchError(
            it,
            got ? JSON.stringify(metadataValues(got.metadataOptions)) : 'nothing (instance not found)',
          ),
          { observed: got ?? null },
        );
    }
    if (pending.length > 0 && round >= rounds) {
      for (const it of pending)
        record(
          it,
          'unverified',
          {
            code: 'IMDSGUARD_E_CHANGE_UNVERIFIED',
            message: `account ${it.accountId} ${it.region} ${it.resourceId}: still pending after ${round + 1} read(s): AWS accepted the change, it is not in effect yet`,
          },
          { observed: seen.get(it.resourceId) },
        );
      return;
    }
    left = pending;
    if (left.length > 0) {
      await ctx.clock.sleep(backoff);
      backoff *= 2;
    }
  }
}

/** Reads back every applied item and records verified, mismatch or unverified. */
export async function verifyApplied(
  ctx: ReadContext,
  applied: readonly PlanItem[],
  record: Recorder,
): Promise<void> {
  const groups = new Map<string, InstanceItem[]>();
  for (const it of applied) {
    if (it.type !== 'instance') continue;
    const k = `${it.accountId}/${it.region}`;
    const g = groups.get(k) ?? [];
    g.push(it);
    groups.set(k, g);
  }
  await mapBounded([...groups.values()], ctx.groupConcurrency, (items) =>
    verifyInstances(ctx, items, record),
  );
  for (const it of applied) {
    if (it.type === 'instance') continue;
    let seen: Observed;
    try {
      seen = await readItem(ctx, it);
    } catch (err) {
      record(it, 'unverified', readFailure(err));
      continue;
    }
    if (settleItem(it, seen) === 'applied') record(it, 'verified', undefined, { observed: seen.value });
    else if (seen.type === 'launch-template')
      record(
        it,
        'mismatch',
        mismatchError(
          it,
          `default version ${seen.value.defaultVersion} (tokens ${seen.value.metadataOptions?.httpTokens ?? 'unset'})`,
        ),
        { observed: seen.value },
      );
    else record(it, 'mismatch', mismatchError(it, JSON.stringify(seen.value)), { observed: seen.value });
  }
}

/**
 * After an ambiguous failure of `item`, reads it back: applied / not-applied (recorded, with the
 * original error kept in result.ambiguous), or null when undecided (the caller records `failed`).
 */
export async function settleAmbiguous(
  ctx: ReadContext,
  item: PlanItem,
  err: { code: string; message: string },
): Promise<{ status: 'applied' | 'not-applied'; result: ItemResult } | null> {
  let seen: Observed;
  try {
    seen = await readItem(ctx, item);
  } catch {
    return null;
  }
  const verdict = settleItem(item, seen);
  if (verdict === 'undecided') return null;
  const result: ItemResult = { ambiguous: err, observed: seen.value ?? null };
  if (verdict === 'applied' && seen.type === 'launch-template' && item.type === 'launch-template') {
    if (item.after.op === 'fix') result.createdVersion = seen.value.defaultVersion;
  }
  return { status: verdict, result };
}
