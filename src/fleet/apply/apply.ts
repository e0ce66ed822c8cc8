/**
 * Runs a change plan: items grouped by account + region, at most `concurrency` calls in flight per
 * group (every group at once, up to `groupConcurrency`), each call rate-limited by the API's token
 * bucket (see rate-limit.ts, wired in the FleetChangeApi), retried on throttling, written ahead into
 * the journal, and logged. One failure never stops the others. Then a verification pass reads every
 * changed resource back. A stop request (AbortSignal: Ctrl-C) lets the calls in flight finish and
 * sends no new one; the change set is then `interrupted`.
 */
import { errorMessage, ImdsguardError, isImdsguardError } from '../../errors.js';
import { mapBounded } from '../aws/concurrency.js';
import { isThrottleError } from '../aws/errors.js';
import type { InstanceMetadataOptions } from '../inventory/model.js';
import type { ItemResult, ItemStatus, Journal } from '../journal/store.js';
import { sameDefaults } from '../plan/defaults.js';
import {
  type ChangePlan,
  type DefaultsItem,
  type InstanceItem,
  matchesTarget,
  metadataValues,
  type PlanItem,
  type TemplateItem,
} from '../plan/types.js';
import type { FleetChangeApi, Where } from './api.js';
import type { ChangeLog } from './changelog.js';
import { type Clock, REAL_CLOCK } from './rate-limit.js';

/** Defaults, with units. */
export const APPLY_DEFAULTS = {
  /** Calls in flight per account + region. */
  concurrency: 4,
  /** Account + region groups worked on at once. */
  groupConcurrency: 16,
  /** Extra rounds for a call still throttled after the SDK's own retries. */
  throttleRetries: 5,
  /** First wait before such a round, ms (doubles each round, with jitter). */
  throttleBackoffMs: 1000,
  /** Longest wait between rounds, ms. */
  throttleBackoffMaxMs: 20_000,
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
  /** Read back and record verified/mismatch (default: true unless dryRun). */
  verify?: boolean;
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
  /** Failed changes and mismatches (dry run: calls that would fail). */
  failures: number;
}

const FAILED: ReadonlySet<ItemStatus> = new Set(['failed', 'dry-run-failed', 'mismatch', 'sent']);

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
    return `HttpTokens=${a.httpTokens ?? 'no-preference'} HttpEndpoint=${a.httpEndpoint ?? 'no-preference'} HttpPutResponseHopLimit=${a.httpPutResponseHopLimit ?? -1} InstanceMetadataTags=${a.instanceMetadataTags ?? 'no-preference'}`;
  }
  return item.after.op === 'fix'
    ? `SourceVersion=${item.after.sourceVersion} HttpTokens=required, then default`
    : `DefaultVersion=${item.after.defaultVersion}`;
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
    const e = err === undefined ? null : { code: errorCodeOf(err), message: errorMessage(err) };
    journal.markResult(changeSetId, item.seq, status, {
      errorCode: e?.code ?? null,
      errorMessage: e?.message ?? null,
      result: result ?? null,
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

  /** Sends one call with write-ahead, throttle retries and the change log. */
  const send = async <T>(
    item: PlanItem,
    action: string,
    call: () => Promise<T>,
    ahead?: ItemResult,
  ): Promise<T> => {
    const rounds = opts.throttleRetries ?? APPLY_DEFAULTS.throttleRetries;
    let backoff = opts.throttleBackoffMs ?? APPLY_DEFAULTS.throttleBackoffMs;
    for (let round = 0; ; round++) {
      journal.markSent(changeSetId, item.seq, ahead);
      log(item, action, 'sent');
      await opts.beforeSend?.(item);
      try {
        return await call();
      } catch (err) {
        if (!isThrottleError((err as { cause?: unknown }).cause ?? err) || round >= rounds) throw err;
        await clock.sleep(Math.min(APPLY_DEFAULTS.throttleBackoffMaxMs, backoff * (0.5 + random())));
        backoff *= 2;
      }
    }
  };

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
          const status: ItemStatus = dryRun ? 'dry-run-failed' : 'failed';
          const e = record(item, status, err);
          log(item, actionOf(item), status, e ?? undefined);
        }
      });
    },
  );
  if (opts.signal?.aborted && outcomes.size < changes.length) interrupted = true;

  if (!dryRun && (opts.verify ?? true)) await verify(plan, api, opts, outcomes, record, log);

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
    failures: list.filter((o) => FAILED.has(o.status)).length,
  };
}

/** Reads back every applied item and records verified or mismatch. */
async function verify(
  plan: ChangePlan,
  api: FleetChangeApi,
  opts: ApplyOptions,
  outcomes: Map<number, ItemOutcome>,
  record: (item: PlanItem, status: ItemStatus, err?: unknown, result?: ItemResult) => unknown,
  log: (item: PlanItem, action: string, status: string, err?: { code: string; message: string }) => void,
): Promise<void> {
  const applied = plan.items.filter((i) => outcomes.get(i.seq)?.status === 'applied');
  const instanceGroups = new Map<string, InstanceItem[]>();
  for (const it of applied) {
    if (it.type !== 'instance') continue;
    const k = `${it.accountId}/${it.region}`;
    const g = instanceGroups.get(k) ?? [];
    g.push(it);
    instanceGroups.set(k, g);
  }
  const mismatch = (item: PlanItem, what: string, observed: unknown) => {
    const err = new ImdsguardError(
      'IMDSGUARD_E_CHANGE_FAILED',
      `account ${item.accountId} ${item.region} ${item.resourceId}: read back ${what}`,
    );
    record(item, 'mismatch', err, { observed });
    log(item, 'verify', 'mismatch', { code: err.code, message: err.message });
  };
  await mapBounded(
    [...instanceGroups.values()],
    opts.groupConcurrency ?? APPLY_DEFAULTS.groupConcurrency,
    async (items) => {
      const first = items[0] as InstanceItem;
      const w = { accountId: first.accountId, region: first.region };
      let seen: Map<string, InstanceMetadataOptions>;
      try {
        seen = await api.readInstanceMetadata(
          w,
          items.map((i) => i.resourceId),
        );
      } catch (err) {
        for (const it of items) mismatch(it, `failed: ${errorMessage(err)}`, null);
        return;
      }
      for (const it of items) {
        const got = seen.get(it.resourceId);
        if (got && matchesTarget(metadataValues(got), it.after)) {
          record(it, 'verified');
          log(it, 'verify', 'verified');
        } else
          mismatch(
            it,
            got ? JSON.stringify(metadataValues(got)) : 'nothing (instance not found)',
            got ?? null,
          );
      }
    },
  );
  for (const it of applied) {
    const w = { accountId: it.accountId, region: it.region };
    try {
      if (it.type === 'launch-template') {
        const t = await api.readTemplate(w, it.resourceId);
        const ok =
          it.after.op === 'restore'
            ? t.defaultVersion === it.after.defaultVersion
            : t.defaultVersion > it.before.defaultVersion && t.metadataOptions?.httpTokens === 'required';
        if (ok) {
          record(it, 'verified');
          log(it, 'verify', 'verified');
        } else
          mismatch(
            it,
            `default version ${t.defaultVersion} (tokens ${t.metadataOptions?.httpTokens ?? 'unset'})`,
            t,
          );
      } else if (it.type === 'account-defaults') {
        const d = await api.readAccountDefaults(w);
        if (sameDefaults(d, it.after)) {
          record(it, 'verified');
          log(it, 'verify', 'verified');
        } else mismatch(it, JSON.stringify(d), d);
      }
    } catch (err) {
      mismatch(it, `failed: ${errorMessage(err)}`, null);
    }
  }
}
