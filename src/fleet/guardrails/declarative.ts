/**
 * PURE: the AWS Organizations declarative policy for EC2 (policy type DECLARATIVE_POLICY_EC2) that
 * sets the IMDS defaults of every account and region below where it is attached, which accounts then
 * cannot change (GetInstanceMetadataDefaults reports them `ManagedBy: declarative-policy`).
 *
 * Syntax (AWS Organizations User Guide, "Declarative policy syntax and examples", Instance Metadata
 * Defaults): the fixed top key `ec2_attributes`; under it `instance_metadata_defaults` with
 *   http_tokens                  no_preference | required | optional
 *   http_put_response_hop_limit  an integer from -1 to 64 (-1: no preference); AWS's example writes it
 *                                as a string ("4")
 *   http_endpoint                no_preference | enabled | disabled
 *   instance_metadata_tags       no_preference | enabled | disabled
 * each value given with the inheritance operator `@@assign`; and `exception_message` (`@@assign`, a
 * string: the custom error message of noncompliant actions, never personal data).
 *
 * Enforcement: the EC2 API change of 2026-02-24 that added HttpTokensEnforced says it is "set per
 * account or manage[d] organization-wide using declarative policies". The policy attribute is
 * `http_tokens_enforced` (enabled | disabled), named as the other four are from their API fields; the
 * guide's Instance Metadata Defaults section above predates it ("sets defaults only and does not
 * enforce IMDS version settings"). It is emitted unless `enforce` is false.
 */

export const DECLARATIVE_CHOICES = {
  httpTokens: ['no_preference', 'required', 'optional'],
  toggle: ['no_preference', 'enabled', 'disabled'],
  enforced: ['enabled', 'disabled'],
} as const;

type Toggle = (typeof DECLARATIVE_CHOICES.toggle)[number];

export interface DeclarativeOptions {
  /** http_put_response_hop_limit: 1..64 (-1: no preference); default 2, as the SCP's cap. */
  hopLimit?: number | undefined;
  /** http_endpoint; default enabled (IMDSv2 needs the endpoint). */
  httpEndpoint?: Toggle | undefined;
  /** instance_metadata_tags; default no_preference (launches keep choosing). */
  instanceMetadataTags?: Toggle | undefined;
  /** http_tokens_enforced: enabled (default) refuses launches that are not tokens required. */
  enforce?: boolean | undefined;
  /** exception_message; default DECLARATIVE_DEFAULTS.exceptionMessage. */
  exceptionMessage?: string | undefined;
}

/**
 * Longest exception message accepted here. AWS documents no limit for it; a policy document may be at
 * most 10,000 characters (AWS Organizations quotas), and the message is shown in API errors.
 */
export const MAX_EXCEPTION_MESSAGE = 1024;

export const DECLARATIVE_DEFAULTS = {
  hopLimit: 2,
  httpEndpoint: 'enabled',
  instanceMetadataTags: 'no_preference',
  exceptionMessage:
    'IMDSv2 is required by an organization policy: launch with HttpTokens=required (see docs/guardrails.md of imdsguard).',
} as const;

interface Assign<T> {
  '@@assign': T;
}

export interface DeclarativePolicy {
  ec2_attributes: {
    instance_metadata_defaults: {
      http_tokens: Assign<'required'>;
      http_put_response_hop_limit: Assign<string>;
      http_endpoint: Assign<Toggle>;
      instance_metadata_tags: Assign<Toggle>;
      http_tokens_enforced?: Assign<'enabled'>;
    };
    exception_message: Assign<string>;
  };
}

/** The declarative policy. Throws RangeError on a bad hop limit or message (the CLI validates first). */
export function buildDeclarativePolicy(opts: DeclarativeOptions = {}): DeclarativePolicy {
  const hop = opts.hopLimit ?? DECLARATIVE_DEFAULTS.hopLimit;
  if (!Number.isInteger(hop) || hop < 1 || hop > 64) {
    throw new RangeError(`hop limit ${hop} is out of range 1..64`);
  }
  const message = opts.exceptionMessage ?? DECLARATIVE_DEFAULTS.exceptionMessage;
  if (message.trim().length === 0 || message.length > MAX_EXCEPTION_MESSAGE) {
    throw new RangeError(`the exception message must have 1..${MAX_EXCEPTION_MESSAGE} characters`);
  }
  return {
    ec2_attributes: {
      instance_metadata_defaults: {
        http_tokens: { '@@assign': 'required' },
        http_put_response_hop_limit: { '@@assign': String(hop) },
        http_endpoint: { '@@assign': opts.httpEndpoint ?? DECLARATIVE_DEFAULTS.httpEndpoint },
        instance_metadata_tags: {
          '@@assign': opts.instanceMetadataTags ?? DECLARATIVE_DEFAULTS.instanceMetadataTags,
        },
        ...(opts.enforce === false ? {} : { http_tokens_enforced: { '@@assign': 'enabled' as const } }),
      },
      exception_message: { '@@assign': message },
    },
  };
}
