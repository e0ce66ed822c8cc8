/**
 * Paths whose answer is a secret: instance-role credentials (aws `iam/security-credentials/`, alibaba
 * `ram/security-credentials/`), the instance's own identity credentials (aws `identity-credentials/`)
 * and user-data, under any version prefix (`latest`, `2021-07-15`, ...). `path` is the guard's
 * normalized path (decoded, dot segments and repeated slashes resolved). Pure.
 */
const SECRET_PATH =
  /^\/[^/]+\/(?:meta-data\/(?:iam\/security-credentials|ram\/security-credentials|identity-credentials)(?:\/|$)|user-data(?:\/|$))/;

export function isSecretPath(path: string): boolean {
  return SECRET_PATH.test(path);
}
