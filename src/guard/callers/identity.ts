import { http } from '../../net/http.js';

import type { InstanceIdentity } from './interval.js';

/**
 * Reads the instance identity document (instance id, account, region) through the guard's own
 * upstream, with IMDSv2: a token PUT with a short TTL, then one GET with the token. The guard's own
 * traffic is not redirected, so this goes straight to the metadata service. The token is used once
 * and never logged; only three fields of the document are kept.
 */

/** TTL of the token asked for, seconds: it is used once, right away. */
const TOKEN_TTL_SECONDS = 60;
/** Largest answer read (the document is about 500 bytes), bytes. */
const MAX_BODY_BYTES = 16 * 1024;
const DOCUMENT_PATH = '/latest/dynamic/instance-identity/document';

export interface IdentityOptions {
  /** The guard's upstream, e.g. http://169.254.169.254. */
  upstream: { host: string; port: number; authority: string };
  /** Per request, milliseconds. */
  timeoutMs: number;
}

function call(
  opts: IdentityOptions,
  method: 'PUT' | 'GET',
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: opts.upstream.host,
        port: opts.upstream.port,
        method,
        path,
        headers: { host: opts.upstream.authority, ...headers },
        timeout: opts.timeoutMs,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            req.destroy(new Error(`answer larger than ${MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The identity, or an Error saying why it could not be read (the message never holds the token). */
export async function readInstanceIdentity(opts: IdentityOptions): Promise<InstanceIdentity> {
  const token = await call(opts, 'PUT', '/latest/api/token', {
    'x-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_SECONDS),
    'content-length': '0',
  });
  if (token.status !== 200 || token.body === '')
    throw new Error(`the token request answered ${token.status}`);
  const doc = await call(opts, 'GET', DOCUMENT_PATH, { 'x-aws-ec2-metadata-token': token.body });
  if (doc.status !== 200) throw new Error(`the identity document answered ${doc.status}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(doc.body);
  } catch {
    throw new Error('the identity document is not JSON');
  }
  const d = (parsed ?? {}) as Record<string, unknown>;
  const instanceId = d['instanceId'];
  const accountId = d['accountId'];
  const region = d['region'];
  if (
    typeof instanceId !== 'string' ||
    !/^i-[0-9a-f]{1,32}$/.test(instanceId) ||
    typeof accountId !== 'string' ||
    !/^\d{12}$/.test(accountId) ||
    typeof region !== 'string' ||
    !/^[a-z0-9-]{1,32}$/.test(region)
  ) {
    throw new Error('the identity document lacks a valid instanceId, accountId or region');
  }
  return { instanceId, accountId, region };
}

/**
 * The identity, read at most once successfully: get() retries a failed read no more often than
 * every retryMs, and answers undefined meanwhile. Reads never overlap.
 */
export function identitySource(
  read: () => Promise<InstanceIdentity>,
  opts: { retryMs: number; now?: () => number; log?: (m: string) => void },
): { get(): Promise<InstanceIdentity | undefined>; known(): InstanceIdentity | undefined } {
  const now = opts.now ?? Date.now;
  let known: InstanceIdentity | undefined;
  let pending: Promise<InstanceIdentity | undefined> | undefined;
  let lastTry = Number.NEGATIVE_INFINITY;
  let saidWhy = false;
  return {
    known: () => known,
    get() {
      if (known) return Promise.resolve(known);
      if (pending) return pending;
      if (now() - lastTry < opts.retryMs) return Promise.resolve(undefined);
      lastTry = now();
      pending = read().then(
        (id) => {
          known = id;
          pending = undefined;
          return id;
        },
        (err: unknown) => {
          pending = undefined;
          if (!saidWhy) {
            saidWhy = true;
            opts.log?.(
              `caller summary: cannot read the instance identity document (${err instanceof Error ? err.message : String(err)}); records go without instance id until it can be read`,
            );
          }
          return undefined;
        },
      );
      return pending;
    },
  };
}
