/**
 * PURE: guardrail policies that keep IMDSv2 enforced once the fleet is hardened. The same statements
 * serve as a Service Control Policy (attached to an OU or account in AWS Organizations) and as an IAM
 * policy (attached to users, groups or roles of one account). Condition keys (EC2 Service
 * Authorization Reference):
 *
 *   ec2:MetadataHttpTokens              String   RunInstances: "required" or "optional"
 *   ec2:MetadataHttpPutResponseHopLimit Numeric  RunInstances: the hop limit asked for
 *   ec2:RoleDelivery                    Numeric  on any call signed with instance-role credentials:
 *                                                 the IMDS version that delivered them ("1.0" or "2.0")
 *   aws:PrincipalArn                    ARN      the caller (global condition key)
 */

export interface GuardrailOptions {
  /** The role allowed to change instance metadata options; default DEFAULT_ADMIN_ROLE. */
  adminRoleArn?: string | undefined;
  /** Highest hop limit RunInstances may ask for (1..64); default 2 (containers need 2). */
  maxHopLimit?: number | undefined;
}

export const GUARDRAIL_DEFAULTS = {
  adminRoleArn: 'arn:aws:iam::*:role/imdsguard-admin',
  maxHopLimit: 2,
} as const;

export interface PolicyStatement {
  Sid: string;
  Effect: 'Deny';
  Action: string | string[];
  Resource: string;
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export interface Guardrails {
  scp: PolicyDocument;
  iam: PolicyDocument;
  /** The options the policies were made with. */
  adminRoleArn: string;
  maxHopLimit: number;
}

const ARN_RE = /^arn:aws[a-z-]*:iam::(\d{12}|\*):role\/[\w+=,.@/*-]+$/;

/** Checks an admin role ARN (wildcards allowed in the account and name, for SCPs). */
export function isRoleArn(s: string): boolean {
  return ARN_RE.test(s);
}

function statements(adminRoleArn: string, maxHopLimit: number): PolicyStatement[] {
  const instances = 'arn:aws:ec2:*:*:instance/*';
  return [
    {
      Sid: 'RequireImdsV2OnLaunch',
      Effect: 'Deny',
      Action: 'ec2:RunInstances',
      Resource: instances,
      Condition: { StringNotEquals: { 'ec2:MetadataHttpTokens': 'required' } },
    },
    {
      Sid: 'CapImdsHopLimitOnLaunch',
      Effect: 'Deny',
      Action: 'ec2:RunInstances',
      Resource: instances,
      Condition: { NumericGreaterThan: { 'ec2:MetadataHttpPutResponseHopLimit': String(maxHopLimit) } },
    },
    {
      Sid: 'OnlyAdminChangesImdsOptions',
      Effect: 'Deny',
      Action: ['ec2:ModifyInstanceMetadataOptions', 'ec2:ModifyInstanceMetadataDefaults'],
      Resource: '*',
      Condition: { ArnNotLike: { 'aws:PrincipalArn': adminRoleArn } },
    },
    {
      Sid: 'DenyImdsV1RoleCredentials',
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: { NumericLessThan: { 'ec2:RoleDelivery': '2.0' } },
    },
  ];
}

/** The SCP and the IAM policy. Throws RangeError on a bad hop limit or ARN (the CLI validates first). */
export function buildGuardrails(opts: GuardrailOptions = {}): Guardrails {
  const adminRoleArn = opts.adminRoleArn ?? GUARDRAIL_DEFAULTS.adminRoleArn;
  const maxHopLimit = opts.maxHopLimit ?? GUARDRAIL_DEFAULTS.maxHopLimit;
  if (!Number.isInteger(maxHopLimit) || maxHopLimit < 1 || maxHopLimit > 64) {
    throw new RangeError(`max hop limit ${maxHopLimit} is out of range 1..64`);
  }
  if (!isRoleArn(adminRoleArn)) throw new RangeError(`"${adminRoleArn}" is not an IAM role ARN`);
  return {
    scp: { Version: '2012-10-17', Statement: statements(adminRoleArn, maxHopLimit) },
    iam: { Version: '2012-10-17', Statement: statements(adminRoleArn, maxHopLimit) },
    adminRoleArn,
    maxHopLimit,
  };
}
