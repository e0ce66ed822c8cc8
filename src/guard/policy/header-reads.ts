import { isSecretPath } from '../../imds/secret-paths.js';

/**
 * The end of the reason of a tokenless credentials or user-data read allowed by a header alone
 * (guard.alertHeaderAllowedReads). Alerts (severity warning) and the host report find these reads by
 * their rule and path (isHeaderAllowedSecretRead).
 */
export const HEADER_READ_REASON = 'a credentials or user-data read allowed on a header any process can send';

/** The rules that allow a tokenless request on a header alone. */
export const HEADER_RULES: ReadonlySet<string> = new Set(['ua-allowlist', 'metadata-flavor']);

/**
 * Whether an event is a tokenless read of credentials or user-data that was allowed only by a
 * User-Agent prefix or Metadata-Flavor: Amazon (not the secret, not a caller rule). Pure.
 */
export function isHeaderAllowedSecretRead(e: {
  decision: string;
  rule: string;
  request: { version: string; path: string };
}): boolean {
  return (
    e.decision === 'allow' &&
    e.request.version === 'v1' &&
    HEADER_RULES.has(e.rule) &&
    isSecretPath(e.request.path)
  );
}
