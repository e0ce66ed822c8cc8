/**
 * Host evidence from CloudWatch Logs: one Logs Insights query per account and region
 * that has instances (or one query of a central group), through the run's clients (the same
 * AssumeRole fan-out as every fleet command), joined per instance.
 *
 *   collectLogsEvidence(factory, targets, instances, spec, window, opts) -> LogsEvidence
 */
import { ImdsguardError } from '../../errors.js';
import type { AccountTarget, AwsClientFactory } from '../aws/clients.js';
import type { ResolvedTargets } from '../aws/targets.js';
import type { InstanceRecord } from '../inventory/model.js';
import {
  AccountSlots,
  DEFAULT_LOGS_QUERY_OPTIONS,
  type LogsQueryOptions,
  type LogsQueryStats,
  queryCallerRows,
} from './logs-insights.js';
import { type CallerRow, hostEvidenceFromRows, type LogsHostEvidence, type LogsSpec } from './logs-query.js';

export interface LogsEvidence {
  spec: LogsSpec;
  /** `account|region|instance` -> what the guard records say; absent: no record of that instance. */
  byInstance: Map<string, LogsHostEvidence>;
  /** Per account and region queried (one entry for a central group). */
  queries: LogsQueryStats[];
  /** The failed query that covers an instance, if any (its records are unknown, not absent). */
  failureFor(i: { accountId: string; region: string }): LogsQueryStats | undefined;
}

export interface LogsEvidenceOptions extends Partial<LogsQueryOptions> {
  /** Accounts x regions queried at once (the run's --concurrency). */
  concurrency?: number | undefined;
  /** Called as each account and region finishes. */
  onProgress?: ((p: { done: number; total: number }) => void) | undefined;
}

/** Runs `work` over items, at most `n` at once. */
async function pool<T>(items: readonly T[], n: number, work: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(n, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(lanes);
}

function centralTarget(
  spec: Extract<LogsSpec, { kind: 'central' }>,
  targets: ResolvedTargets,
): AccountTarget {
  const found = targets.accounts.find((a) => a.accountId === spec.accountId);
  if (found) return found;
  if (spec.accountId === targets.callerAccountId)
    return { accountId: spec.accountId, name: null, roleArn: null };
  throw new ImdsguardError(
    'IMDSGUARD_E_HOST_EVIDENCE',
    `the central log group is in account ${spec.accountId}, which is neither the caller's account nor one of this run's accounts`,
    {
      hint: `add ${spec.accountId} to --accounts (the role is assumed there too), or run with credentials of that account`,
    },
  );
}

export async function collectLogsEvidence(
  factory: AwsClientFactory,
  targets: ResolvedTargets,
  instances: readonly InstanceRecord[],
  spec: LogsSpec,
  window: { startMs: number; endMs: number },
  opts: LogsEvidenceOptions = {},
): Promise<LogsEvidence> {
  const qopts: LogsQueryOptions = { ...DEFAULT_LOGS_QUERY_OPTIONS };
  for (const [k, v] of Object.entries(opts))
    if (v !== undefined && k in qopts) (qopts as unknown as Record<string, unknown>)[k] = v;
  const slots = new AccountSlots(opts.concurrency !== undefined ? Math.min(opts.concurrency, 30) : 4);
  const work: Array<{ target: AccountTarget; region: string }> = [];
  const idsOf = new Map<string, string[]>();
  for (const i of instances) {
    const k = spec.kind === 'central' ? '' : `${i.accountId}|${i.region}`;
    const list = idsOf.get(k) ?? [];
    list.push(i.instanceId);
    idsOf.set(k, list);
  }
  if (spec.kind === 'central') {
    work.push({ target: centralTarget(spec, targets), region: spec.region });
  } else {
    const byId = new Map(targets.accounts.map((a) => [a.accountId, a]));
    const seen = new Set<string>();
    for (const i of instances) {
      const k = `${i.accountId}|${i.region}`;
      const target = byId.get(i.accountId);
      if (seen.has(k) || !target) continue;
      seen.add(k);
      work.push({ target, region: i.region });
    }
    work.sort(
      (a, b) => a.target.accountId.localeCompare(b.target.accountId) || a.region.localeCompare(b.region),
    );
  }
  const rows: CallerRow[] = [];
  const queries: LogsQueryStats[] = [];
  let done = 0;
  await pool(work, opts.concurrency ?? 8, async ({ target, region }) => {
    const r = await queryCallerRows(
      {
        accountId: target.accountId,
        region,
        group: spec.group,
        client: factory.logs(target, region),
        instanceIds: idsOf.get(spec.kind === 'central' ? '' : `${target.accountId}|${region}`) ?? [],
      },
      window.startMs,
      window.endMs,
      slots,
      qopts,
    );
    // Per-account groups hold their own account and region only: a record claiming another is not trusted.
    for (const row of r.rows) {
      if (spec.kind === 'central' || (row.accountId === target.accountId && row.region === region))
        rows.push(row);
    }
    queries.push(r.stats);
    done += 1;
    opts.onProgress?.({ done, total: work.length });
  });
  queries.sort((a, b) => a.accountId.localeCompare(b.accountId) || a.region.localeCompare(b.region));
  const failed = queries.filter((q) => q.status === 'failed');
  return {
    spec,
    byInstance: hostEvidenceFromRows(rows),
    queries,
    failureFor: (i) =>
      spec.kind === 'central'
        ? failed[0]
        : failed.find((q) => q.accountId === i.accountId && q.region === i.region),
  };
}
