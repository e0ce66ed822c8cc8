import { SinkError } from './types.js';

/** Longest response body read from a receiver (bytes); the rest is discarded. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Longest Retry-After honoured (milliseconds). */
export const MAX_RETRY_AFTER_MS = 15 * 60_000;

/** Parses Retry-After (seconds or an HTTP date) into milliseconds, bounded. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const t = Date.parse(v);
    if (Number.isNaN(t)) return undefined;
    ms = t - now;
  }
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

export interface PostResult {
  status: number;
  body: string;
}

/**
 * POSTs a body with a timeout (milliseconds) and returns the status and (bounded) body. Network errors
 * and timeouts become a SinkError. `what` names the receiver in messages; never pass a secret URL.
 */
export async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  what: string,
): Promise<PostResult> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      body,
      headers,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    const reason =
      err instanceof Error && err.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : errText(err);
    throw new SinkError(`${what}: ${reason}`, { cause: err });
  }
  const text = await readBounded(res);
  if (res.status === 429 || res.status === 503) {
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    throw new SinkError(`${what}: HTTP ${res.status}`, retryAfterMs === undefined ? {} : { retryAfterMs });
  }
  if (res.status >= 300) {
    const transient = res.status >= 500 || res.status === 408;
    throw new SinkError(`${what}: HTTP ${res.status} ${oneLine(text)}`, { transient });
  }
  return { status: res.status, body: text };
}

function errText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && 'code' in cause) return `${err.message} (${String(cause.code)})`;
    return err.message;
  }
  return String(err);
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 199)}…` : t;
}

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (size < MAX_RESPONSE_BYTES) chunks.push(value.subarray(0, MAX_RESPONSE_BYTES - size));
      size += value.byteLength;
    }
  } catch {
    // A truncated body is still an answer; the status decides.
  }
  return Buffer.concat(chunks).toString('utf8');
}
