/**
 * The AWS Organizations declarative policy for EC2, as AWS documents it (written from the AWS
 * Organizations User Guide, "Declarative policy syntax and examples", not from imdsguard's code):
 *
 *   - the document starts with the fixed key `ec2_attributes` ("Declarative policies always start with
 *     a fixed key name for the given AWS service");
 *   - `exception_message` under it, with `@@assign` and a string ("Your custom error message");
 *   - `instance_metadata_defaults` with `http_tokens` (no_preference | required | optional),
 *     `http_put_response_hop_limit` ("Integer value from -1 to 64"; the guide's own example writes
 *     "4"), `http_endpoint` and `instance_metadata_tags` (no_preference | enabled | disabled), each as
 *     `{ "@@assign": value }` (management policy inheritance operators);
 *   - `http_tokens_enforced` (enabled | disabled): account-level enforcement, which the EC2 API change
 *     of 2026-02-24 says can be managed organization-wide with declarative policies.
 *
 * Strict: a key AWS does not document, a misspelt operator or value fails.
 */
import { z } from 'zod';

const assign = <T extends z.ZodType>(value: T) => z.strictObject({ '@@assign': value });
const toggle = z.enum(['no_preference', 'enabled', 'disabled']);
const hopLimit = z.union([
  z.number().int().min(-1).max(64),
  z
    .string()
    .regex(/^-?\d+$/)
    .refine((s) => Number(s) >= -1 && Number(s) <= 64, 'an integer from -1 to 64'),
]);

export const ec2DeclarativePolicySchema = z.strictObject({
  ec2_attributes: z
    .strictObject({
      exception_message: assign(z.string().min(1)).optional(),
      instance_metadata_defaults: z
        .strictObject({
          http_tokens: assign(z.enum(['no_preference', 'required', 'optional'])).optional(),
          http_put_response_hop_limit: assign(hopLimit).optional(),
          http_endpoint: assign(toggle).optional(),
          instance_metadata_tags: assign(toggle).optional(),
          http_tokens_enforced: assign(z.enum(['enabled', 'disabled'])).optional(),
        })
        .optional(),
    })
    // Other EC2 attributes exist (vpc_block_public_access, serial_console_access, ...); imdsguard's
    // policy has none, so they are refused here too.
    .refine((a) => Object.keys(a).length > 0, 'ec2_attributes must set something'),
});
