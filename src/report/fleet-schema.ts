/**
 * The schema of the `fleet discover` and `fleet roles` JSON documents, as zod schemas. docs/fleet-json-schema.json
 * is generated from these (z.toJSONSchema) and a test checks that the file, these schemas and the
 * real output agree. Strict objects: an unknown key in the output is a bug until it is added here.
 */
import { z } from 'zod';

const nullableString = z.string().nullable();
const tokens = z.enum(['optional', 'required']).nullable();
const toggle = z.enum(['enabled', 'disabled']).nullable();
const hop = z.number().int().nullable();
const iso = z.string().describe('ISO 8601 time, UTC');

/** `fleet discover --usage`: the readiness of one live instance (docs/usage.md). */
export const instanceUsageSchema = z.strictObject({
  readiness: z.enum(['ready', 'not-ready', 'unknown', 'enforced', 'disabled', 'broken']),
  reason: z.string().describe('docs/usage.md, Readiness'),
  detail: z.string(),
  v1Calls: z.number().nullable().describe('MetadataNoToken sum over the window; null: not read'),
  v1LastSeen: iso.nullable(),
  rejectedCalls: z.number().nullable().describe('MetadataNoTokenRejected sum; null: not read'),
  suggestion: nullableString,
  hostV1Callers: z
    .array(
      z.strictObject({
        exe: nullableString,
        user: nullableString,
        container: nullableString,
        pod: nullableString.describe('Kubernetes namespace/name, from the guard caller summary'),
        v1Calls: z.number(),
        v2Calls: z.number(),
        lastSeen: iso.nullable(),
      }),
    )
    .nullable()
    .describe('null: no host evidence (file or guard record) for this instance'),
});

/** `fleet discover --usage`: the usage window, counts and CloudWatch failures. */
export const discoverUsageSchema = z.strictObject({
  window: z.strictObject({
    days: z.number().int(),
    start: iso,
    end: iso.describe('now: the window ends when the command ran'),
    periodSeconds: z.number().int(),
    periods: z.number().int(),
    periodsEnd: iso.describe(
      'the end of the whole periods; the rest of the window is read at tailPeriodSeconds',
    ),
    tailPeriodSeconds: z.number().int(),
  }),
  mode: z.enum(['auto', 'both', 'rejected']),
  counts: z.strictObject({
    ready: z.number().int(),
    'not-ready': z.number().int(),
    unknown: z.number().int(),
    enforced: z.number().int().describe('HttpTokens=required with the endpoint enabled, no rejected call'),
    disabled: z.number().int().describe('HttpEndpoint=disabled'),
    broken: z.number().int(),
  }),
  regionStats: z.array(
    z.strictObject({
      accountId: z.string(),
      region: z.string(),
      instances: z.number().int(),
      queries: z.number().int(),
      batches: z.number().int(),
      calls: z.number().int(),
      status: z.enum(['ok', 'failed', 'partial']),
    }),
  ),
  failures: z.array(
    z.strictObject({
      accountId: z.string(),
      region: z.string(),
      code: z.string(),
      awsCode: nullableString,
      message: z.string(),
      hint: nullableString,
      instances: z.number().int(),
    }),
  ),
});

export const instanceSchema = z.strictObject({
  instanceId: z.string(),
  accountId: z.string(),
  region: z.string(),
  state: z.string().describe('pending | running | shutting-down | terminated | stopping | stopped'),
  instanceType: nullableString,
  launchTime: iso.nullable(),
  metadataOptions: z.strictObject({
    state: z.enum(['pending', 'applied']).nullable(),
    httpTokens: tokens,
    httpEndpoint: toggle,
    httpPutResponseHopLimit: hop,
    httpProtocolIpv6: toggle,
    instanceMetadataTags: toggle,
  }),
  instanceProfileArn: nullableString,
  instanceProfileName: nullableString,
  roleNames: z.array(z.string()).nullable().describe('null: not resolved'),
  imageId: nullableString,
  imageImdsSupport: z
    .enum(['v2.0', 'unknown'])
    .nullable()
    .describe("'unknown': the AMI could not be described"),
  launchTemplate: z
    .strictObject({
      launchTemplateId: z.string(),
      launchTemplateName: nullableString,
      version: nullableString,
    })
    .nullable(),
  autoScalingGroupName: nullableString,
  usage: instanceUsageSchema.optional().describe('fleet discover --usage only'),
  tags: z.record(z.string(), z.string()),
});

const launchMetadataOptions = z.strictObject({
  httpTokens: tokens,
  httpEndpoint: toggle,
  httpPutResponseHopLimit: hop,
  httpProtocolIpv6: toggle,
  instanceMetadataTags: toggle,
});

export const scanSchema = z.strictObject({
  accountId: z.string(),
  region: z.string(),
  status: z.enum(['ok', 'partial', 'failed']),
  instanceCount: z.number().int(),
  defaults: z
    .strictObject({
      httpTokens: tokens,
      httpEndpoint: toggle,
      httpPutResponseHopLimit: hop,
      instanceMetadataTags: toggle,
      httpTokensEnforced: toggle.describe(
        'HttpTokensEnforced: enabled refuses launches and instances that are not HttpTokens=required; null: not returned (not enforced)',
      ),
    })
    .nullable()
    .describe('GetInstanceMetadataDefaults; null fields: no preference; null: not read'),
  defaultsManagement: z
    .strictObject({
      managedBy: z.enum(['account', 'declarative-policy']).nullable(),
      exceptionMessage: nullableString.describe("the declarative policy's custom message"),
    })
    .nullable()
    .describe('who manages the defaults (GetInstanceMetadataDefaults ManagedBy); null: not read'),
  launchTemplates: z.array(
    z.strictObject({
      accountId: z.string(),
      region: z.string(),
      launchTemplateId: z.string(),
      launchTemplateName: z.string(),
      defaultVersionNumber: z.number().int(),
      latestVersionNumber: z.number().int(),
      versions: z.array(
        z.strictObject({
          versionNumber: z.number().int(),
          isDefault: z.boolean(),
          imageId: nullableString,
          instanceProfileArn: nullableString,
          metadataOptions: launchMetadataOptions.nullable(),
          createTime: iso.nullable(),
        }),
      ),
    }),
  ),
  autoScalingGroups: z.array(
    z.strictObject({
      accountId: z.string(),
      region: z.string(),
      name: z.string(),
      arn: nullableString,
      launchTemplate: z
        .strictObject({
          launchTemplateId: nullableString,
          launchTemplateName: nullableString,
          version: z.string(),
        })
        .nullable(),
      mixedInstancesPolicy: z.boolean(),
      launchConfigurationName: nullableString,
      desiredCapacity: z.number().int().nullable(),
      instanceIds: z.array(z.string()),
    }),
  ),
  launchConfigurations: z.array(
    z.strictObject({
      accountId: z.string(),
      region: z.string(),
      name: z.string(),
      arn: nullableString,
      imageId: nullableString,
      instanceProfile: nullableString,
      metadataOptions: z
        .strictObject({ httpTokens: tokens, httpEndpoint: toggle, httpPutResponseHopLimit: hop })
        .nullable(),
    }),
  ),
  images: z.array(
    z.strictObject({
      accountId: z.string(),
      region: z.string(),
      imageId: z.string(),
      name: nullableString,
      ownerId: nullableString,
      imdsSupport: z.literal('v2.0').nullable(),
    }),
  ),
});

export const failureSchema = z.strictObject({
  accountId: nullableString,
  region: nullableString,
  stage: z.enum([
    'accounts',
    'regions',
    'assume-role',
    'instances',
    'account-defaults',
    'launch-templates',
    'launch-template-versions',
    'auto-scaling-groups',
    'launch-configurations',
    'images',
    'roles',
  ]),
  code: z.string().describe('IMDSGUARD_E_ code (docs/errors.md)'),
  awsCode: nullableString,
  message: z.string(),
  hint: nullableString,
});

const accountSchema = z.strictObject({
  accountId: z.string(),
  name: nullableString,
  access: z.enum(['caller', 'assumed']),
  roleArn: nullableString,
  status: z.enum(['ok', 'failed']),
});

const counts = {
  instances: z.number().int(),
  tokensRequired: z.number().int(),
  tokensOptional: z.number().int(),
  endpointDisabled: z.number().int(),
  pending: z.number().int(),
  withInstanceProfile: z.number().int(),
  imdsV1WithProfile: z.number().int(),
  hopLimit: z.strictObject({ '1': z.number().int(), '2': z.number().int(), '>2': z.number().int() }),
  ipv6Enabled: z.number().int(),
  tagsInMetadata: z.number().int(),
  percent: z.strictObject({
    tokensRequired: z.number(),
    tokensOptional: z.number(),
    endpointDisabled: z.number(),
  }),
};

const callStats = z.strictObject({
  calls: z.number().int(),
  attempts: z.number().int(),
  throttled: z.number().int(),
  errors: z.number().int(),
});

const statsSchema = z.strictObject({
  durationMs: z.number(),
  apiCalls: callStats,
  apiCallsByOperation: z.record(z.string(), callStats),
});

export const findingSchema = z.strictObject({
  id: z.string().describe('docs/findings.md'),
  severity: z.enum(['high', 'medium', 'low', 'info']),
  resourceType: z.enum([
    'instance',
    'launch-template',
    'auto-scaling-group',
    'launch-configuration',
    'account-defaults',
    'image',
  ]),
  resourceId: z.string(),
  accountId: z.string(),
  region: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
});

export const discoverDocumentSchema = z
  .strictObject({
    schemaVersion: z.literal(1),
    kind: z.literal('imdsguard.fleet.discover'),
    generatedAt: iso,
    regions: z.array(z.string()),
    accounts: z.array(accountSchema),
    summary: z.strictObject({
      overall: z.strictObject(counts),
      byAccount: z.array(z.strictObject({ accountId: z.string(), ...counts })),
      byRegion: z.array(z.strictObject({ region: z.string(), ...counts })),
      byAccountRegion: z.array(z.strictObject({ accountId: z.string(), region: z.string(), ...counts })),
    }),
    findingCounts: z.strictObject({
      high: z.number().int(),
      medium: z.number().int(),
      low: z.number().int(),
      info: z.number().int(),
    }),
    findings: z.array(findingSchema),
    failures: z.array(failureSchema),
    scans: z.array(scanSchema),
    instances: z.array(instanceSchema),
    stats: statsSchema,
    usage: discoverUsageSchema.optional().describe('fleet discover --usage only'),
  })
  .describe('imdsguard fleet discover --format json');

export const rolesDocumentSchema = z
  .strictObject({
    schemaVersion: z.literal(1),
    kind: z.literal('imdsguard.fleet.roles'),
    generatedAt: iso,
    regions: z.array(z.string()),
    accounts: z.array(accountSchema),
    groups: z.array(
      z.strictObject({
        accountId: z.string(),
        instanceProfileArn: nullableString,
        instanceProfileName: nullableString,
        roleNames: z.array(z.string()).nullable(),
        regions: z.array(z.string()),
        instances: z.number().int(),
        running: z.number().int(),
        imdsV1Allowed: z.number().int(),
        instanceIds: z.array(z.string()),
      }),
    ),
    failures: z.array(failureSchema),
    stats: statsSchema,
  })
  .describe('imdsguard fleet roles --format json');

/** The JSON Schema (draft 2020-12) of both documents, as written to docs/fleet-json-schema.json. */
export function fleetJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'imdsguard fleet JSON output, schemaVersion 1',
    oneOf: [z.toJSONSchema(discoverDocumentSchema), z.toJSONSchema(rolesDocumentSchema)].map((s) => {
      const { $schema: _drop, ...rest } = s as Record<string, unknown>;
      return rest;
    }),
  };
}
