/**
 * PURE: the change plan every fleet change command builds before it touches anything. A plan is a list
 * of items; each item is a change (before -> after), a skip with its reason, or blocked: a change AWS
 * would refuse (plan/blocked.ts marks them), with the reason. Rollback is just another plan. The journal (fleet/journal) stores plans as they are, and the applier (fleet/apply) runs them.
 */
import type { AccountDefaultsRecord, LaunchMetadataOptions } from '../inventory/model.js';

export const CHANGE_KINDS = [
  'harden',
  'disable',
  'hop-limit',
  'relax',
  'enable',
  'templates',
  'defaults',
  'rollback',
] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** Why an item is in the plan but not changed. */
export const SKIP_REASONS = {
  'already-compliant': 'already has the target settings',
  'endpoint-disabled': 'the metadata endpoint is disabled; harden never re-enables it',
  terminated: 'terminated or shutting down: it cannot be modified',
  excluded: 'excluded by --exclude-instances or --exclude-tags',
  'state-not-selected': 'its state is not in --states',
  filtered: 'left out by a selection filter',
  'changed-since': 'changed by someone else since the change set; use --force to restore anyway',
  'latest-not-default':
    'a newer version than the default exists; fixing from the default would change $Latest',
  'not-found': 'no longer exists',
  'scan-failed':
    'what this change needs could not be read in its account and region: nothing is changed there',
} as const;
export type SkipReason = keyof typeof SKIP_REASONS;

export interface SkipInfo {
  reason: SkipReason;
  /** A sentence for people; for `filtered`, the filter's own explanation. */
  detail: string;
  /** The selection filter that skipped it (reason `filtered`). */
  filter?: string;
}

/** Why a change is in the plan but cannot be made: AWS would refuse it (plan/blocked.ts). */
export const BLOCK_REASONS = {
  'tokens-enforced':
    'the region enforces IMDSv2 (HttpTokensEnforced=enabled): AWS refuses HttpTokens=optional there (UnsupportedOperation)',
  'managed-by-policy':
    'an AWS Organizations declarative policy manages the IMDS defaults of this region: the account cannot change them',
} as const;
export type BlockReason = keyof typeof BLOCK_REASONS;

export interface BlockInfo {
  reason: BlockReason;
  /** A sentence for people: what would be refused, and what to do instead. */
  detail: string;
}

/** The five settable metadata options (ModifyInstanceMetadataOptions); null: unknown, never sent. */
export type MetadataValues = LaunchMetadataOptions;

interface ItemBase {
  /** 0-based position in the plan; the journal's item key within a change set. */
  seq: number;
  accountId: string;
  region: string;
  /** Instance id, launch template id, or ACCOUNT/REGION for account defaults. */
  resourceId: string;
  /** change: sent; skip: nothing to do (skip says why); blocked: AWS would refuse it (blocked says why). */
  action: 'change' | 'skip' | 'blocked';
  skip: SkipInfo | null;
  /** Set by markBlocked (plan/blocked.ts) on items AWS would refuse; `after` keeps what was wanted. */
  blocked?: BlockInfo | undefined;
}

export interface InstanceItem extends ItemBase {
  type: 'instance';
  name: string | null;
  state: string;
  before: MetadataValues;
  after: MetadataValues;
}

/** What defines a launch template's launches: its default version and that version's options. */
export interface TemplateState {
  defaultVersion: number;
  /** The default version's MetadataOptions (null: the version sets none). */
  metadataOptions: MetadataValues | null;
}

export interface TemplateItem extends ItemBase {
  type: 'launch-template';
  templateName: string;
  latestVersion: number;
  before: TemplateState;
  /**
   * fix: a new version from `sourceVersion` with `metadataOptions`, made the default.
   * restore: make `defaultVersion` the default again (rollback).
   */
  after:
    | { op: 'fix'; sourceVersion: number; metadataOptions: MetadataValues }
    | {
        op: 'restore';
        defaultVersion: number;
        /** That version's MetadataOptions when known (rollback: from the journal), for markBlocked. */
        metadataOptions?: MetadataValues | null | undefined;
      };
}

export interface DefaultsItem extends ItemBase {
  type: 'account-defaults';
  before: AccountDefaultsRecord;
  after: AccountDefaultsRecord;
}

export type PlanItem = InstanceItem | TemplateItem | DefaultsItem;

export interface ChangePlan {
  kind: ChangeKind;
  /** The change set a rollback restores. */
  rollbackOf: string | null;
  items: PlanItem[];
  /** Requested instance ids (--instances, --input-file) not found in any scanned account and region. */
  missing: string[];
  /** Things reported, never changed (AMIs without ImdsSupport v2.0, groups on old versions, ...). */
  notes: string[];
}

export interface PlanCounts {
  total: number;
  change: number;
  skip: number;
  /** Changes AWS would refuse (never sent; the run exits 1). */
  blocked: number;
  bySkipReason: Partial<Record<SkipReason, number>>;
  byBlockReason: Partial<Record<BlockReason, number>>;
}

export function countPlan(plan: Pick<ChangePlan, 'items'>): PlanCounts {
  const out: PlanCounts = {
    total: plan.items.length,
    change: 0,
    skip: 0,
    blocked: 0,
    bySkipReason: {},
    byBlockReason: {},
  };
  for (const it of plan.items) {
    if (it.action === 'change') out.change += 1;
    else if (it.action === 'blocked') {
      out.blocked += 1;
      const r = it.blocked?.reason;
      if (r) out.byBlockReason[r] = (out.byBlockReason[r] ?? 0) + 1;
    } else {
      out.skip += 1;
      const r = it.skip?.reason;
      if (r) out.bySkipReason[r] = (out.bySkipReason[r] ?? 0) + 1;
    }
  }
  return out;
}

export function skip(reason: SkipReason, detail?: string, filter?: string): SkipInfo {
  return { reason, detail: detail ?? SKIP_REASONS[reason], ...(filter !== undefined ? { filter } : {}) };
}

/** The metadata fields compared and sent, in API order. */
export const METADATA_FIELDS = [
  'httpTokens',
  'httpEndpoint',
  'httpPutResponseHopLimit',
  'httpProtocolIpv6',
  'instanceMetadataTags',
] as const satisfies readonly (keyof MetadataValues)[];

/** True when every field `target` knows (non-null) has the same value in `current`. */
export function matchesTarget(current: MetadataValues, target: MetadataValues): boolean {
  return METADATA_FIELDS.every((f) => target[f] === null || current[f] === target[f]);
}

/** Copies the five settable fields (drops `state` from an instance's options). */
export function metadataValues(m: MetadataValues): MetadataValues {
  return {
    httpTokens: m.httpTokens,
    httpEndpoint: m.httpEndpoint,
    httpPutResponseHopLimit: m.httpPutResponseHopLimit,
    httpProtocolIpv6: m.httpProtocolIpv6,
    instanceMetadataTags: m.instanceMetadataTags,
  };
}
