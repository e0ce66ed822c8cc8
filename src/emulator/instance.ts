import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ImdsguardError } from '../errors.js';

/**
 * The instance the emulator pretends to be. Field names follow the EC2 API where one exists. Other
 * flavours (GCP, Azure, ...) serve the same values in their own shapes.
 *
 * An instance file (JSON or YAML) overrides the built-in default instance key by key at the top level:
 * a file with only `iam: {role: web}` gets every other field from the default. `iam: null` and
 * `userData: null` remove the role and the user data.
 */

const ipv4 = z.string().refine((s) => isIP(s) === 4, 'must be an IPv4 address');
const cidr4 = z
  .string()
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/, 'must be an IPv4 CIDR block such as 10.0.0.0/16');
const awsId = (prefix: string) =>
  z
    .string()
    .regex(
      new RegExp(`^${prefix}-[0-9a-f]{8}([0-9a-f]{9})?$`),
      `must look like ${prefix}-0123456789abcdef0 (8 or 17 hex digits)`,
    );

/** AWS allows these characters in tag keys served through instance metadata (no '/' and no spaces). */
const TAG_KEY = /^[A-Za-z0-9+\-=.,_:@]{1,128}$/;

const iamSchema = z
  .object({
    role: z
      .string()
      .regex(/^[\w+=,.@-]{1,64}$/, 'must be an IAM role name (1..64 of letters, digits and +=,.@_-)'),
    instanceProfileArn: z
      .string()
      .regex(/^arn:aws[\w-]*:iam::\d{12}:instance-profile\/.+$/, 'must be an instance-profile ARN')
      .optional(),
    instanceProfileId: z
      .string()
      .regex(/^AIPA[A-Z0-9]{16,}$/, 'must look like AIPA followed by 16 or more A-Z0-9')
      .optional(),
    /** How long each set of credentials is valid, in seconds (real EC2: about 6 hours). */
    credentialLifetimeSeconds: z.number().int().min(60).max(43_200).default(21_600),
    /** After how many seconds new credentials replace the current ones (must be below the lifetime). */
    rotateAfterSeconds: z.number().int().min(1).max(43_200).default(18_000),
  })
  .strict()
  .refine((v) => v.rotateAfterSeconds < v.credentialLifetimeSeconds, {
    message: 'must be less than credentialLifetimeSeconds (credentials rotate before they expire)',
    path: ['rotateAfterSeconds'],
  });

export const instanceSchema = z
  .object({
    instanceId: awsId('i'),
    amiId: awsId('ami'),
    instanceType: z.string().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, 'must look like t3.micro'),
    accountId: z.string().regex(/^\d{12}$/, 'must be 12 digits'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must look like us-east-1'),
    availabilityZone: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+[a-z]$/, 'must look like us-east-1a'),
    availabilityZoneId: z.string().regex(/^[a-z]{3,}\d*-az\d+$/, 'must look like use1-az4'),
    architecture: z.enum(['x86_64', 'arm64']),
    /** ISO 8601 launch time; served as pendingTime in the identity document. */
    launchTime: z.iso.datetime({ message: 'must be an ISO 8601 date-time such as 2026-01-01T00:00:00Z' }),
    hostname: z.string().min(1).max(253),
    localIpv4: ipv4,
    publicIpv4: ipv4.optional(),
    publicHostname: z.string().min(1).max(253).optional(),
    mac: z
      .string()
      .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'must be a lower-case MAC such as 0e:1a:2b:3c:4d:5e'),
    networkInterfaceId: awsId('eni'),
    vpcId: awsId('vpc'),
    vpcCidr: cidr4,
    subnetId: awsId('subnet'),
    subnetCidr: cidr4,
    reservationId: awsId('r'),
    securityGroups: z
      .array(z.object({ name: z.string().min(1).max(255), id: awsId('sg') }).strict())
      .min(1)
      .max(16),
    iam: iamSchema.nullable(),
    /** InstanceMetadataTags: tags are served under meta-data/tags/instance/ only when enabled. */
    instanceMetadataTags: z.enum(['enabled', 'disabled']),
    tags: z
      .array(
        z
          .object({
            key: z
              .string()
              .regex(TAG_KEY, 'must be 1..128 of letters, digits and +-=.,_:@ (no "/" or spaces)'),
            value: z.string().max(256),
          })
          .strict(),
      )
      .max(50),
    /** Served verbatim at /latest/user-data; null means no user data (404). At most 16 KiB, as on EC2. */
    userData: z.string().max(16_384).nullable(),
  })
  .strict();

export type InstanceModel = z.infer<typeof instanceSchema>;

const DEFAULT_INSTANCE: InstanceModel = {
  instanceId: 'i-0a1b2c3d4e5f60718',
  amiId: 'ami-0c55b159cbfafe1f0',
  instanceType: 't3.micro',
  accountId: '123456789012',
  region: 'us-east-1',
  availabilityZone: 'us-east-1a',
  availabilityZoneId: 'use1-az4',
  architecture: 'x86_64',
  launchTime: '2026-01-15T09:30:00Z',
  hostname: 'ip-10-0-1-23.ec2.internal',
  localIpv4: '10.0.1.23',
  publicIpv4: '203.0.113.25',
  publicHostname: 'ec2-203-0-113-25.compute-1.amazonaws.com',
  mac: '0e:1a:2b:3c:4d:5e',
  networkInterfaceId: 'eni-0f1e2d3c4b5a69788',
  vpcId: 'vpc-0123456789abcdef0',
  vpcCidr: '10.0.0.0/16',
  subnetId: 'subnet-0fedcba9876543210',
  subnetCidr: '10.0.1.0/24',
  reservationId: 'r-0abcdef1234567890',
  securityGroups: [{ name: 'web-server', id: 'sg-0123abcd4567ef890' }],
  iam: {
    role: 'imdsguard-demo-role',
    instanceProfileArn: 'arn:aws:iam::123456789012:instance-profile/imdsguard-demo-role',
    instanceProfileId: 'AIPAEXAMPLE2ID3456789',
    credentialLifetimeSeconds: 21_600,
    rotateAfterSeconds: 18_000,
  },
  instanceMetadataTags: 'enabled',
  tags: [
    { key: 'Name', value: 'imdsguard-demo' },
    { key: 'Environment', value: 'test' },
  ],
  userData: '#!/bin/bash\necho "hello from imdsguard emulate"\n',
};

/** A fresh copy of the built-in instance (a t3.micro in us-east-1 with an IAM role and two tags). */
export function defaultInstance(): InstanceModel {
  return structuredClone(DEFAULT_INSTANCE);
}

/** Formats a zod issue path the way our configuration errors do: `iam.role`, `tags[2].key`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out === '' ? '(top level)' : out;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** One readable message per issue, without echoing the input value (it may be a secret). */
export function formatIssue(issue: z.core.$ZodIssue): string {
  const where = formatIssuePath(issue.path);
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return `${where}: is required`;
      const article = /^[aeiou]/.test(issue.expected) ? 'an' : 'a';
      const expected = issue.expected === 'int' ? 'an integer' : `${article} ${issue.expected}`;
      return `${where}: must be ${expected}, got ${describeType(issue.input)}`;
    }
    case 'unrecognized_keys': {
      const prefix = issue.path.length === 0 ? '' : `${where}.`;
      return issue.keys.map((k) => `${prefix}${k}: unknown key "${k}"`).join('; ');
    }
    case 'invalid_value':
      return `${where}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return issue.origin === 'array'
        ? `${where}: must have at least ${issue.minimum} item(s)`
        : issue.origin === 'string'
          ? `${where}: must not be empty`
          : `${where}: must be at least ${issue.minimum}`;
    case 'too_big':
      return issue.origin === 'array'
        ? `${where}: must have at most ${issue.maximum} items`
        : issue.origin === 'string'
          ? `${where}: must be at most ${issue.maximum} characters`
          : `${where}: must be at most ${issue.maximum}`;
    default:
      return `${where}: ${issue.message}`;
  }
}

/**
 * Validates an instance description (already parsed from JSON or YAML) laid over the default
 * instance. Throws IMDSGUARD_E_INSTANCE_FILE naming the first bad field; every issue is in details.
 */
export function parseInstance(input: unknown, source = 'instance'): InstanceModel {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ImdsguardError(
      'IMDSGUARD_E_INSTANCE_FILE',
      `${source}: (top level): must be an object, got ${describeType(input)}`,
    );
  }
  const merged = { ...defaultInstance(), ...(input as Record<string, unknown>) };
  const result = instanceSchema.safeParse(merged, { reportInput: true });
  if (!result.success) {
    const problems = result.error.issues.map(formatIssue);
    throw new ImdsguardError('IMDSGUARD_E_INSTANCE_FILE', `${source}: ${problems[0]}`, {
      details: { problems },
      hint:
        problems.length > 1
          ? `${problems.length - 1} more problem(s): ${problems.slice(1, 4).join('; ')}`
          : 'see docs/emulator.md for the instance file format',
    });
  }
  // publicHostname without publicIpv4 would describe an impossible instance.
  if (result.data.publicHostname !== undefined && result.data.publicIpv4 === undefined) {
    throw new ImdsguardError(
      'IMDSGUARD_E_INSTANCE_FILE',
      `${source}: publicHostname: needs publicIpv4 as well`,
    );
  }
  return result.data;
}

/** Reads an instance file (JSON, or YAML for .yaml/.yml or anything that is not JSON). */
export function loadInstanceFile(path: string): InstanceModel {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ImdsguardError(
      'IMDSGUARD_E_INSTANCE_FILE',
      `${path}: cannot read the instance file (${code})`,
      {
        cause: err,
      },
    );
  }
  if (text.length > 1_048_576) {
    throw new ImdsguardError('IMDSGUARD_E_INSTANCE_FILE', `${path}: larger than 1 MiB; not an instance file`);
  }
  let data: unknown;
  const isJson = /\.json$/i.test(path) || /^\s*[{[]/.test(text);
  try {
    data = isJson ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new ImdsguardError(
      'IMDSGUARD_E_INSTANCE_FILE',
      `${path}: not valid ${isJson ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`,
      { cause: err },
    );
  }
  return parseInstance(data, path);
}
