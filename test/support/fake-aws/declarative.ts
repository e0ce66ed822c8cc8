/**
 * Attaching an AWS Organizations declarative policy for EC2 to accounts of the fake fleet (what the
 * Organizations API does after CreatePolicy + AttachPolicy; the fake has no policy API). Modelled on
 * what AWS documents:
 *   - the document must follow the declarative policy syntax (test/support/declarative-policy-schema.ts;
 *     AWS refuses a malformed one with MalformedPolicyDocumentException);
 *   - `instance_metadata_defaults` becomes each region's IMDS defaults; `no_preference` (hop limit -1)
 *     leaves a field without a preference (Organizations User Guide, Instance Metadata Defaults);
 *   - "Account administrators will not be able to modify the value of the service attribute at the
 *     individual account level": GetInstanceMetadataDefaults answers `ManagedBy: declarative-policy`
 *     with the policy's `exception_message` as `ManagedExceptionMessage` (EC2 API reference,
 *     InstanceMetadataDefaultsResponse), and ModifyInstanceMetadataDefaults fails (ec2.ts);
 *   - `http_tokens_enforced` sets HttpTokensEnforced ("manage organization-wide using declarative
 *     policies", EC2 API change 2026-02-24).
 */
import { ec2DeclarativePolicySchema } from '../declarative-policy-schema.js';
import { FakeAwsError } from './context.js';
import type { FakeFleet } from './model.js';

type Choice<T extends string> = T | 'no_preference' | undefined;

function pref<T extends string>(v: { '@@assign': Choice<T> } | undefined): T | undefined {
  const x = v?.['@@assign'];
  return x === undefined || x === 'no_preference' ? undefined : (x as T);
}

/** Applies the policy (JSON text, as CreatePolicy takes it) to every region of these accounts. */
export function attachDeclarativePolicy(
  fleet: FakeFleet,
  accountIds: readonly string[],
  content: string,
): void {
  let doc: unknown;
  try {
    doc = JSON.parse(content);
  } catch {
    throw new FakeAwsError(
      'MalformedPolicyDocumentException',
      'The provided policy document is not valid JSON.',
    );
  }
  const parsed = ec2DeclarativePolicySchema.safeParse(doc);
  if (!parsed.success) {
    throw new FakeAwsError(
      'MalformedPolicyDocumentException',
      `The provided policy document does not meet the requirements of the specified policy type: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  const attrs = parsed.data.ec2_attributes;
  const imds = attrs.instance_metadata_defaults;
  if (!imds) return;
  const hop = imds.http_put_response_hop_limit ? Number(imds.http_put_response_hop_limit['@@assign']) : -1;
  for (const id of accountIds) {
    const account = fleet.accounts.get(id);
    if (!account)
      throw new FakeAwsError('TargetNotFoundException', `account ${id} is not in the organization`);
    for (const region of account.regions.values()) {
      region.defaults = {
        httpTokens: pref(imds.http_tokens),
        httpPutResponseHopLimit: hop === -1 ? undefined : hop,
        httpEndpoint: pref(imds.http_endpoint),
        instanceMetadataTags: pref(imds.instance_metadata_tags),
        httpTokensEnforced: imds.http_tokens_enforced?.['@@assign'],
        managedBy: 'declarative-policy',
        managedExceptionMessage: attrs.exception_message?.['@@assign'],
      };
    }
  }
}
