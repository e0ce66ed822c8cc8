/**
 * Runs a change plan: items grouped by account + region, at most `concurrency` calls in flight per
 * group (every group at once, up to `groupConcurrency`), each call rate-limited by the API's token
 * bucket (see rate-limit.ts, wired in the FleetChangeApi), retried on throttling (retry.ts), written
 * ahead into the journal, and logged. One failure never stops the others. A failure that may have
 * acted (a cut connection, a timeout, a 5xx) is settled by reading the resource back (verify.ts):
 * applied or not-applied. Then a verification pass reads every changed resource back, with the same
 * retries and pacing: verified, mismatch, or unverified. Blocked and skipped items are never sent. A
 * stop request (AbortSignal: Ctrl-C) lets the calls in flight finish and sends no new one; the change
 * set is then `interrupted`.
 */
import { errorMessage, isImdsguardError } from '../../errors.js';
import { mapBounded } from '../aws/concurrency.js';
import { isDefiniteRefusal } from '../aws/errors.js';
import type { ItemResult, ItemStatus, Journal } from '../journal/store.js';
import type { ChangePlan, DefaultsItem, InstanceItem, PlanItem, TemplateItem } from '../plan/types.js';
import type { FleetChangeApi, Where } from './api.js';
import type { ChangeLog } from './changelog.js';
import { type Clock, REAL_CLOCK } from './rate-limit.js';
import { RETRY_DEFAULTS, withThrottleRetries } from './retry.js';
import { type ReadContext, settleAmbiguous, verifyApplied } from './verify.js';

/** Defaults, with units. */
export const APPLY_DEFAULTS = {
  /** Calls in flight per account + region. */
  concurrency: 4,
  /** Account + region groups worked on at once. */
  groupConcurrency: 16,
  ...RETRY_DEFAULTS,
} as const;

export interface ApplyOptions {
  journal: Journal;
  changeSetId: string;
  dryRun: boolean;
  concurrency?: number;
  groupConcurrency?: number;
  throttleRetries?: number;
  throttleBackoffMs?: number;
  /** Stop sending new calls when aborted (Ctrl-C). */
  signal?: AbortSignal;
  changeLog?: ChangeLog;
  clock?: Clock;
  /** Read back and record verified/mismatch/unverified (default: true unless dryRun). */
  verify?: boolean;
  /** Extra reads of a change still pending on a running instance, and the first wait, ms (verify.ts). */
  pendingRounds?: number;
  pendingBackoffMs?: number;
  /** Test hook: runs after the journal row is written and before each call is sent. */
  beforeSend?: (item: PlanItem) => void | Promise<void>;
  /** Random source for backoff jitter (tests). */
  random?: () => number;
}

export interface ItemOutcome {
  seq: number;
  item: PlanItem;
  status: ItemStatus;
  errorCode: string | null;
  errorMessage: string | null;
}

export interface ApplyResult {
  changeSetId: string;
  dryRun: boolean;
  interrupted: boolean;
  outcomes: ItemOutcome[];
  counts: Partial<Record<ItemStatus, number>>;
  /** Failed, mismatched and unverified changes (dry run: calls that would fail). */
  failures: number;
}

/** Statuses that make a run exit 1 (docs/fleet-changes.md, Statuses). */
export const FAILED_STATUSES: ReadonlySet<ItemStatus> = new Set([
  'failed',
  'not-applied',
  'dry-run-failed',
  'mismatch',
  'sent',
  'unverified',
]);

function actionOf(item: PlanItem, step?: 'create' | 'default'): string {
  if (item.type === 'instance') return 'ModifyInstanceMetadataOptions';
  if (item.type === 'account-defaults') return 'ModifyInstanceMetadataDefaults';
  return step === 'create' ? 'CreateLaunchTemplateVersion' : 'ModifyLaunchTemplate';
}

function describeAfter(item: PlanItem): string {
  if (item.type === 'instance') {
    const a = item.after;
    return `HttpTokens=${a.httpTokens} HttpEndpoint=${a.httpEndpoint} HttpPutResponseHopLimit=${a.httpPutResponseHopLimit} HttpProtocolIpv6=${a.httpProtocolIpv6} InstanceMetadataTags=${a.instanceMetadataTags}`;
  }
  if (item.type === 'account-defaults') {
    const a = item.after;
    return `HttpTokens=${a.httpTokens ?? 'no-preference'} HttpEndpoint=${a.httpEndpoint ?? 'no-preference'} HttpPutResponseHopLimit=${a.httpPutResponseHopLimit ?? -1} InstanceMetadataTags=${a.instanceMetadataTags ?? 'no-preference'} HttpTokensEnforced=${a.httpTokensEnforced ?? 'no-preference'}`;
  }
  return item.after.op === 'fix'
    ? `SourceVersion=${item.after.sourceVersion} HttpTokens=required, then default`
    : `DefaultVersion=${item.after.defaultVersion}`;
}

function isCodeMessage(x: unknown): x is { code: string; message: string } {
  return (
    typeof x === 'object' &&
    x !== null &&
    !(x instanceof Error) &&
    typeof (x as { code?: unknown }).code === 'string' &&
    typeof (x as { message?: unknown }).message === 'string'
  );
}

function errorCodeOf(err: unknown): string {
  if (isImdsguardError(err)) {
    const aws = err.details?.['awsCode'];
    return typeof aws === 'string' ? aws : err.code;
  }
  return 'IMDSGUARD_E_INTERNAL';
}

/** Applies the `change` items of a plan already recorded in the journal as change set `changeSetId`. */
export async function applyPlan(
  plan: ChangePlan,
  api: FleetChangeApi,
  opts: ApplyOptions,
): Promise<ApplyResult> {
  const clock = opts.clock ?? REAL_CLOCK;
  const random = opts.random ?? Math.random;
  const { journal, changeSetId, dryRun } = opts;
  const outcomes = new Map<number, ItemOutcome>();
  const results = new Map<number, ItemResult>();
  const log = (item: PlanItem, action: string, status: string, err?: { code: string; message: string }) =>
    opts.changeLog?.write({
      timestamp: new Date(clock.now()).toISOString(),
      changeSetId,
      change: plan.kind,
      action,
      accountId: item.accountId,
      region: item.region,
      resource: item.resourceId,
      dryRun,
      status,
      detail: describeAfter(item),
      errorCode: err?.code,
      message: err?.message,
    });
  const record = (item: PlanItem, status: ItemStatus, err?: unknown, result?: ItemResult) => {
    const e =
      err === undefined
        ? null
        : isCodeMessage(err)
          ? err
          : { code: errorCodeOf(err), message: errorMessage(err) };
    // Results accumulate (a created version, then what the verification read back).
    const merged = result ? { ...results.get(item.seq), ...result } : results.get(item.seq);
    if (merged) results.set(item.seq, merged);
    journal.markResult(changeSetId, item.seq, status, {
      errorCode: e?.code ?? null,
      errorMessage: e?.message ?? null,
      result: merged ?? null,
    });
    outcomes.set(item.seq, {
      seq: item.seq,
      item,
      status,
      errorCode: e?.code ?? null,
      errorMessage: e?.message ?? null,
    });
    return e;
  };
  const readContext: ReadContext = {
    api,
    clock,
    random,
    throttleRetries: opts.throttleRetries,
    throttleBackoffMs: opts.throttleBackoffMs,
    groupConcurrency: opts.groupConcurrency ?? APPLY_DEFAULTS.groupConcurrency,
    pendingRounds: opts.pendingRounds,
    pendingBackoffMs: opts.pendingBackoffMs,
  };

  /** Sends one call with write-ahead (every round), throttle retries and the change log. */
  const send = <T>(item: PlanItem, action: string, call: () => Promise<T>, ahead?: ItemResult): Promise<T> =>
    withThrottleRetries(call, {
      rounds: opts.throttleRetries,
      backoffMs: opts.throttleBackoffMs,
      clock,
      random,
      beforeRound: async () => {
        journal.markSent(changeSetId, item.seq, ahead);
        log(item, action, 'sent');
        await opts.beforeSend?.(item);
      },
    });

  const applyInstance = async (item: InstanceItem, w: Where) => {
    const action = actionOf(item);
    await send(item, action, () => api.modifyInstanceMetadata(w, item.resourceId, item.after, dryRun));
    return undefined;
  };

  const applyTemplate = async (item: TemplateItem, w: Where) => {
    if (item.after.op === 'restore') {
      await send(item, 'ModifyLaunchTemplate', () =>
        api.setTemplateDefaultVersion(
          w,
          item.resourceId,
          (item.after as { defaultVersion: number }).defaultVersion,
          dryRun,
        ),
      );
      return undefined;
    }
    const fix = item.after;
    const created = await send(item, 'CreateLaunchTemplateVersion', () =>
      api.createTemplateVersion(
        w,
        item.resourceId,
        fix.sourceVersion,
        fix.metadataOptions,
        `imdsguard ${changeSetId}: HttpTokens=required (from version ${fix.sourceVersion})`,
        dryRun,
      ),
    );
    if (dryRun) {
      // The new version does not exist in a dry run: check the permission on the current default.
      await send(item, 'ModifyLaunchTemplate', () =>
        api.setTemplateDefaultVersion(w, item.resourceId, item.before.defaultVersion, true),
      );
      return undefined;
    }
    if (created === null) throw new Error('CreateLaunchTemplateVersion returned no version number');
    log(item, 'CreateLaunchTemplateVersion', 'applied');
    // Write-ahead again for the second call, with the created version recorded.
    await send(
      item,
      'ModifyLaunchTemplate',
      () => api.setTemplateDefaultVersion(w, item.resourceId, created, false),
      {
        createdVersion: created,
      },
    );
    return { createdVersion: created };
  };

  const applyDefaults = async (item: DefaultsItem, w: Where) => {
    await send(item, actionOf(item), () => api.setAccountDefaults(w, item.after, dryRun));
    return undefined;
  };

  const changes = plan.items.filter((i) => i.action === 'change');
  const groups = new Map<string, PlanItem[]>();
  for (const it of changes) {
    const k = `${it.accountId}/${it.region}`;
    const g = groups.get(k) ?? [];
    g.push(it);
    groups.set(k, g);
  }
  let interrupted = false;
  await mapBounded(
    [...groups.values()],
    opts.groupConcurrency ?? APPLY_DEFAULTS.groupConcurrency,
    async (items) => {
      await mapBounded(items, opts.concurrency ?? APPLY_DEFAULTS.concurrency, async (item) => {
        if (opts.signal?.aborted) {
          interrupted = true;
          return;
        }
        const w = { accountId: item.accountId, region: item.region };
        try {
          const result =
            item.type === 'instance'
              ? await applyInstance(item, w)
              : item.type === 'launch-template'
                ? await applyTemplate(item, w)
                : await applyDefaults(item, w);
          const status: ItemStatus = dryRun ? 'dry-run-ok' : 'applied';
          record(item, status, undefined, result);
          log(item, actionOf(item), status);
        } catch (err) {
          const e = { code: errorCodeOf(err), message: errorMessage(err) };
          if (!dryRun && !isDefiniteRefusal(err)) {
            // The call may have acted: the resource itself says whether it did.
            const settled = await settleAmbiguous(readContext, item, e);
            if (settled) {
              record(item, settled.status, settled.status === 'not-applied' ? e : undefined, settled.result);
              log(item, actionOf(item), settled.status, {
                code: e.code,
                message: `${e.message} (read back: ${settled.status})`,
              });
              return;
            }
            const undecided = { ...e, message: `${e.message}; read back: could not tell whether it acted` };
            record(item, 'failed', undecided, { ambiguous: e });
            log(item, actionOf(item), 'failed', undecided);
            return;
          }
          const status: ItemStatus = dryRun ? 'dry-run-failed' : 'failed';
          record(item, status, e);
          log(item, actionOf(item), status, e);
        }
      });
    },
  );
  if (opts.signal?.aborted && outcomes.size < changes.length) interrupted = true;

  if (!dryRun && (opts.verify ?? true)) {
    const applied = plan.items.filter((i) => outcomes.get(i.seq)?.status === 'applied');
    await verifyApplied(readContext, applied, (item, status, err, result) => {
      record(item, status, err, result);
      log(item, 'verify', status, err);
    });
  }

  journal.finishChangeSet(changeSetId, interrupted ? 'interrupted' : 'done');
  const list = changes.map(
    (it) =>
      outcomes.get(it.seq) ?? {
        seq: it.seq,
        item: it,
        status: 'planned' as ItemStatus,
        errorCode: null,
        errorMessage: null,
      },
  );
  const counts: Partial<Record<ItemStatus, number>> = {};
  for (const o of list) counts[o.status] = (counts[o.status] ?? 0) + 1;
  return {
    changeSetId,
    dryRun,
    interrupted,
    outcomes: list,
    counts,
    failures: list.filter((o) => FAILED_STATUSES.has(o.status)).length,
  };
}
