import type { GuardConfig } from '../../src/config/schema.js';
import { compilePolicy } from '../../src/guard/policy/compile.js';
import type { Decision } from '../../src/guard/policy/types.js';
import { classifyRequest } from '../../src/imds/classify.js';
import type { Header, ParsedRequest } from './raw-http.js';

/**
 * The guard's own pure policy, applied to a request as the upstream received it: the black-box form
 * of "the decision was made on exactly the bytes that were forwarded". Whatever reached the upstream
 * must be something the policy allows when it sees those very bytes.
 */

/** Header names node:http keeps once (a later copy is dropped), as IncomingMessage does. */
const SINGLE = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/** The header object node:http would build from this list. */
export function nodeHeaders(headers: readonly Header[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of headers) {
    const n = k.toLowerCase();
    const prev = out[n];
    if (prev === undefined) out[n] = v;
    else if (!SINGLE.has(n)) out[n] = `${prev}, ${v}`;
  }
  return out;
}

/**
 * Decides `req` as the guard's policy would if it had arrived on a socket whose local side is
 * `local` (the upstream's own address: the Host the guard names it by is then "the listen address").
 */
export function rejudge(
  config: GuardConfig,
  req: ParsedRequest,
  local: { address: string; port: number },
): Decision {
  const policy = compilePolicy(config, { attribution: false });
  const cls = classifyRequest(
    {
      method: req.method,
      target: req.target,
      rawHeaders: req.headers.flat(),
      local,
      clientNetns: 'host',
    },
    config.flavor,
    config.authHeader,
  );
  return policy.decide(cls);
}
