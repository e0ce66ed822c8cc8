import type { InstanceMetadataOptions, InstanceRecord } from '../../src/fleet/inventory/model.js';

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
