/**
 * What the discover outputs share: the schema version of the fleet documents, and the CSV columns of
 * one instance (with its finding ids).
 */
import { allowsImdsV1, type InstanceRecord, instanceKey } from '../fleet/inventory/model.js';
import type { Finding } from '../fleet/posture/findings.js';
import type { Column } from './columns.js';

/** Bump on any incompatible change of the fleet JSON documents (docs/fleet-json-schema.json). */
export const FLEET_SCHEMA_VERSION = 1 as const;

/** One CSV row per instance: these columns, in this order. */
export function instanceColumns(findingsByInstance: Map<string, string[]>): Column<InstanceRecord>[] {
  return [
    { header: 'account_id', value: (i) => i.accountId },
    { header: 'region', value: (i) => i.region },
    { header: 'instance_id', value: (i) => i.instanceId },
    { header: 'name', value: (i) => i.tags['Name'] ?? '' },
    { header: 'state', value: (i) => i.state },
    { header: 'instance_type', value: (i) => i.instanceType },
    { header: 'launch_time', value: (i) => i.launchTime },
    { header: 'http_tokens', value: (i) => i.metadataOptions.httpTokens },
    { header: 'http_endpoint', value: (i) => i.metadataOptions.httpEndpoint },
    { header: 'hop_limit', value: (i) => i.metadataOptions.httpPutResponseHopLimit },
    { header: 'http_protocol_ipv6', value: (i) => i.metadataOptions.httpProtocolIpv6 },
    { header: 'instance_metadata_tags', value: (i) => i.metadataOptions.instanceMetadataTags },
    { header: 'metadata_state', value: (i) => i.metadataOptions.state },
    { header: 'imdsv1_allowed', value: (i) => allowsImdsV1(i.metadataOptions) },
    { header: 'instance_profile_arn', value: (i) => i.instanceProfileArn },
    { header: 'role_names', value: (i) => i.roleNames?.join(';') },
    { header: 'image_id', value: (i) => i.imageId },
    { header: 'image_imds_support', value: (i) => i.imageImdsSupport },
    { header: 'launch_template_id', value: (i) => i.launchTemplate?.launchTemplateId },
    { header: 'launch_template_name', value: (i) => i.launchTemplate?.launchTemplateName },
    { header: 'launch_template_version', value: (i) => i.launchTemplate?.version },
    { header: 'auto_scaling_group', value: (i) => i.autoScalingGroupName },
    { header: 'findings', value: (i) => (findingsByInstance.get(instanceKey(i)) ?? []).join(';') },
    {
      header: 'tags',
      value: (i) =>
        Object.entries(i.tags)
          .map(([k, v]) => `${k}=${v}`)
          .join(';'),
    },
  ];
}

export function findingsByInstance(findings: readonly Finding[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of findings) {
    if (f.resourceType !== 'instance') continue;
    const k = `${f.accountId}/${f.region}/${f.resourceId}`;
    const list = out.get(k) ?? [];
    list.push(f.id);
    out.set(k, list);
  }
  return out;
}
