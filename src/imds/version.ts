/**
 * The kinds of metadata request, as classified from the request alone: `token` is the token PUT,
 * `v2` a request carrying the flavour's SSRF-proof credential (a session token, or the required
 * header), `v1` a request without it, `unknown` when the target cannot be parsed.
 */
export const IMDS_VERSIONS = ['v1', 'v2', 'token', 'unknown'] as const;
export type ImdsVersion = (typeof IMDS_VERSIONS)[number];
