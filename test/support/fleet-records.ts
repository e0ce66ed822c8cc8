import { readFileSync } from 'node:fs';
import type { InstanceMetadataOptions, InstanceRecord, Inventory } from '../../src/fleet/inventory/model.js';
import type { RunStats } from '../../src/report/fleet.js';

/** test/fixtures/fleet/inventory-small.json, parsed afresh on each call (callers may change it). */
export function smallInventory(): Inventory {
  return JSON.parse(
    readFileSync(new URL('../fixtures/fleet/inventory-small.json', import.meta.url), 'utf8'),
  ) as Inventory;
}

/** The RunStats of a tiny run: one call, 5 ms. */
export function tinyRunStats(): RunStats {
  return {
    durationMs: 5,
    apiCalls: { calls: 1, attempts: 1, throttled: 0, errors: 0 },
    apiCallsByOperation: {},
  };
}

/**
 * An InstanceRecord for tests: a running t3.micro in 111111111111/us-east-1 with IMDSv1 allowed (tokens
 * optional, hop limit 1), no profile, image, template or group. `m` overrides metadata options; any
 * other field overrides the record.
 */
export function instanceRecord(
  over: Partial<InstanceRecord> & { m?: Partial<InstanceMetadataOptions> } = {},
): InstanceRecord {
  const { m, ...rest } = over;
  return {
    instanceId: 'i-0000000000000000a',
    accountId: '111111111111',
    region: 'us-east-1',
    state: 'running',
    instanceType: 't3.micro',
    launchTime: null,
    metadataOptions: {
      state: 'applied',
      httpTokens: 'optional',
      httpEndpoint: 'enabled',
      httpPutResponseHopLimit: 1,
      httpProtocolIpv6: 'disabled',
      instanceMetadataTags: 'disabled',
      ...m,
    },
    instanceProfileArn: null,
    instanceProfileName: null,
    roleNames: null,
    imageId: null,
    imageImdsSupport: null,
    launchTemplate: null,
    autoScalingGroupName: null,
    tags: {},
    ...rest,
  };
}
