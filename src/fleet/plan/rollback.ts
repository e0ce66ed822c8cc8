/**
 * PURE: rollback is just another plan. For every item of a change set that was sent (whatever its
 * result: a timeout may still have applied), restore the exact previous settings: every metadata
 * field, disabled endpoints and hop limits included; a template's previous default version; the
 * account defaults as they were (no-preference included). An item already back to its previous
 * settings is skipped as already compliant; one that someone changed since is skipped as
 * changed-since unless `force`.
 */
import type { Inventory } from '../inventory/model.js';
import { instanceKey } from '../inventory/model.js';
import { sameDefaults } from './defaults.js';
import {
  type ChangePlan,
  type DefaultsItem,
  type InstanceItem,
  matchesTarget,
  metadataValues,
  type PlanItem,
  skip,
  type TemplateItem,
} from './types.js';

/** One item of the change set being rolled back, as the journal recorded it. */
export interface RecordedItem {
  item: PlanItem;
  /** The call was sent (or may have been): its result does not matter. */
  sent: boolean;
  /** For templates: the version the fix created, when known. */
  createdVersion: number | null;
}

export interface RollbackOptions {
  /** Restore even items someone changed since the change set. */
  force?: boolean;
}

/** Builds the rollback plan of change set `changeSetId` against the current inventory. */
export function planRollback(
  changeSetId: string,
  recorded: readonly RecordedItem[],
  current: Pick<Inventory, 'instances' | 'scans'>,
  opts: RollbackOptions = {},
): ChangePlan {
  const instances = new Map(current.instances.map((i) => [instanceKey(i), i]));
  const items: PlanItem[] = [];
  const force = opts.force === true;
  for (const r of recorded) {
    if (!r.sent || r.item.action !== 'change') continue;
    const seq = items.length;
    const orig = r.item;
    if (orig.type === 'instance') {
      const inst = instances.get(instanceKey({ ...orig, instanceId: orig.resourceId }));
      const base = {
        type: 'instance' as const,
        seq,
        accountId: orig.accountId,
        region: orig.region,
        resourceId: orig.resourceId,
        name: orig.name,
      };
      if (!inst) {
        items.push({
          ...base,
          state: 'unknown',
          action: 'skip',
          skip: skip('not-found'),
          before: orig.after,
          after: orig.before,
        });
        continue;
      }
      const now = metadataValues(inst.metadataOptions);
      const target = { ...now };
      for (const [k, v] of Object.entries(orig.before) as [keyof typeof target, never][])
        if (v !== null) target[k] = v;
      const item: InstanceItem = {
        ...base,
        state: inst.state,
        action: 'change',
        skip: null,
        before: now,
        after: target,
      };
      if (inst.state === 'terminated' || inst.state === 'shutting-down') {
        item.action = 'skip';
        item.skip = skip('terminated', `the instance is ${inst.state}`);
        item.after = now;
      } else if (matchesTarget(now, orig.before)) {
        item.action = 'skip';
        item.skip = skip('already-compliant', 'already has its previous settings');
        item.after = now;
      } else if (!force && !matchesTarget(now, orig.after)) {
        item.action = 'skip';
        item.skip = skip('changed-since');
        item.after = now;
      }
      items.push(item);
    } else if (orig.type === 'launch-template') {
      const scan = current.scans.find((s) => s.accountId === orig.accountId && s.region === orig.region);
      const t = scan?.launchTemplates.find((x) => x.launchTemplateId === orig.resourceId);
      const restore = {
        op: 'restore' as const,
        defaultVersion: orig.before.defaultVersion,
        metadataOptions: orig.before.metadataOptions,
      };
      const base = {
        type: 'launch-template' as const,
        seq,
        accountId: orig.accountId,
        region: orig.region,
        resourceId: orig.resourceId,
        templateName: orig.templateName,
        after: restore,
      };
      if (!t) {
        items.push({
          ...base,
          latestVersion: orig.latestVersion,
          before: orig.before,
          action: 'skip',
          skip: skip('not-found'),
        });
        continue;
      }
      const cur = t.versions.find((v) => v.versionNumber === t.defaultVersionNumber);
      const item: TemplateItem = {
        ...base,
        latestVersion: t.latestVersionNumber,
        before: { defaultVersion: t.defaultVersionNumber, metadataOptions: cur?.metadataOptions ?? null },
        action: 'change',
        skip: null,
      };
      const expected = r.createdVersion ?? (orig.after.op === 'restore' ? orig.after.defaultVersion : null);
      if (t.defaultVersionNumber === orig.before.defaultVersion) {
        item.action = 'skip';
        item.skip = skip('already-compliant', `version ${orig.before.defaultVersion} is already the default`);
      } else if (!force && expected !== null && t.defaultVersionNumber !== expected) {
        item.action = 'skip';
        item.skip = skip(
          'changed-since',
          `the default is now version ${t.defaultVersionNumber}, not ${expected}`,
        );
      }
      items.push(item);
    } else {
      const scan = current.scans.find((s) => s.accountId === orig.accountId && s.region === orig.region);
      const base = {
        type: 'account-defaults' as const,
        seq,
        accountId: orig.accountId,
        region: orig.region,
        resourceId: orig.resourceId,
      };
      if (!scan?.defaults) {
        items.push({
          ...base,
          action: 'skip',
          skip: skip('not-found', 'the account defaults could not be read'),
          before: orig.after,
          after: orig.before,
        });
        continue;
      }
      const now = { ...scan.defaults };
      const item: DefaultsItem = {
        ...base,
        action: 'change',
        skip: null,
        before: now,
        after: { ...orig.before },
      };
      if (sameDefaults(now, orig.before)) {
        item.action = 'skip';
        item.skip = skip('already-compliant', 'already has the previous defaults');
      } else if (!force && !sameDefaults(now, orig.after)) {
        item.action = 'skip';
        item.skip = skip('changed-since');
      }
      items.push(item);
    }
  }
  return {
    kind: 'rollback',
    rollbackOf: changeSetId,
    items,
    missing: [],
    notes: [],
  };
}
