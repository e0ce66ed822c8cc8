/**
 * PURE: which instances a change command acts on. An instance is selected when it matches every
 * given criterion: one of the requested ids (--instances, --input-file), and every --tags pair (key AND
 * value). A selected instance is then skipped, with its reason, when it is excluded (--exclude-instances
 * or any --exclude-tags pair: exclusions always win), terminated, in a state not in --states, or left
 * out by an extra filter (SelectionFilter: `--only-ready` plugs in here).
 */
import { ImdsguardError } from '../../errors.js';
import type { InstanceRecord } from '../inventory/model.js';
import type { InstanceRef } from './csv.js';
import { isInstanceId } from './csv.js';
import { type SkipInfo, skip } from './types.js';

export interface TagPair {
  key: string;
  value: string;
}

/** States a change may select (the others, shutting-down and terminated, cannot be modified). */
export const SELECTABLE_STATES = ['pending', 'running', 'stopping', 'stopped'] as const;
export type SelectableState = (typeof SELECTABLE_STATES)[number];

export interface SelectionCriteria {
  /** --instances and --input-file rows; null: every instance of the scanned accounts and regions. */
  instances: readonly InstanceRef[] | null;
  /** Every pair must match (key and value). */
  tags: readonly TagPair[];
  /** Any pair matching excludes the instance. */
  excludeTags: readonly TagPair[];
  excludeInstanceIds: readonly string[];
  /** null: every selectable state. */
  states: readonly SelectableState[] | null;
}

/**
 * An extra selection predicate, applied after the built-in ones. `check` returns null to keep the
 * instance, or a sentence saying why it is left out (the plan shows it as reason `filtered`).
 */
export interface SelectionFilter {
  name: string;
  check(instance: InstanceRecord): string | null;
}

export interface SelectedInstance {
  instance: InstanceRecord;
  skip: SkipInfo | null;
}

export interface SelectionResult {
  selected: SelectedInstance[];
  /** Requested ids that match no instance. */
  missing: string[];
}

export const EMPTY_CRITERIA: SelectionCriteria = {
  instances: null,
  tags: [],
  excludeTags: [],
  excludeInstanceIds: [],
  states: null,
};

/** Parses "K=V,K2=V2" pairs (the value may contain '='). Throws IMDSGUARD_E_USAGE naming the option. */
export function parseTagPairs(values: readonly string[], option: string): TagPair[] {
  const out: TagPair[] = [];
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) {
      throw new ImdsguardError(
        'IMDSGUARD_E_USAGE',
        `${option}: expected KEY=VALUE, got "${v}" (a key alone is not enough: values must match too)`,
      );
    }
    out.push({ key: v.slice(0, i).trim(), value: v.slice(i + 1).trim() });
  }
  return out;
}

export function parseInstanceIds(values: readonly string[], option: string): string[] {
  for (const v of values) {
    if (!isInstanceId(v))
      throw new ImdsguardError('IMDSGUARD_E_USAGE', `${option}: "${v}" is not an instance id`);
  }
  return [...new Set(values)];
}

export function parseStates(values: readonly string[]): SelectableState[] {
  for (const v of values) {
    if (!(SELECTABLE_STATES as readonly string[]).includes(v)) {
      throw new ImdsguardError(
        'IMDSGUARD_E_USAGE',
        `--states: "${v}" is not one of ${SELECTABLE_STATES.join(', ')} (terminated instances cannot be changed)`,
      );
    }
  }
  return [...new Set(values)] as SelectableState[];
}

function hasPair(tags: Record<string, string>, p: TagPair): boolean {
  return Object.hasOwn(tags, p.key) && tags[p.key] === p.value;
}

function refMatches(ref: InstanceRef, i: InstanceRecord): boolean {
  return (
    ref.instanceId === i.instanceId &&
    (ref.accountId === null || ref.accountId === i.accountId) &&
    (ref.region === null || ref.region === i.region)
  );
}

/** Selects instances; the result keeps the inventory's order. */
export function selectInstances(
  instances: readonly InstanceRecord[],
  criteria: SelectionCriteria,
  filters: readonly SelectionFilter[] = [],
): SelectionResult {
  const byId = new Map<string, InstanceRef[]>();
  for (const r of criteria.instances ?? []) {
    const list = byId.get(r.instanceId) ?? [];
    list.push(r);
    byId.set(r.instanceId, list);
  }
  const found = new Set<InstanceRef>();
  const excludedIds = new Set(criteria.excludeInstanceIds);
  const states = criteria.states ?? SELECTABLE_STATES;
  const selected: SelectedInstance[] = [];
  for (const i of instances) {
    if (criteria.instances !== null) {
      const refs = (byId.get(i.instanceId) ?? []).filter((r) => refMatches(r, i));
      if (refs.length === 0) continue;
      for (const r of refs) found.add(r);
    }
    if (!criteria.tags.every((p) => hasPair(i.tags, p))) continue;
    let s: SkipInfo | null = null;
    if (excludedIds.has(i.instanceId)) s = skip('excluded', 'excluded by --exclude-instances');
    else {
      const hit = criteria.excludeTags.find((p) => hasPair(i.tags, p));
      if (hit) s = skip('excluded', `excluded by --exclude-tags ${hit.key}=${hit.value}`);
    }
    if (!s && (i.state === 'terminated' || i.state === 'shutting-down'))
      s = skip('terminated', `the instance is ${i.state}`);
    if (!s && !(states as readonly string[]).includes(i.state))
      s = skip('state-not-selected', `state ${i.state} is not in --states ${states.join(',')}`);
    if (!s) {
      for (const f of filters) {
        const why = f.check(i);
        if (why !== null) {
          s = skip('filtered', why, f.name);
          break;
        }
      }
    }
    selected.push({ instance: i, skip: s });
  }
  const missing = (criteria.instances ?? [])
    .filter((r) => !found.has(r))
    .map((r) => [r.accountId, r.region, r.instanceId].filter((x) => x !== null).join('/'));
  return { selected, missing };
}
