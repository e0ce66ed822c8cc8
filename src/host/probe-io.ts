import { http } from '../net/http.js';

/**
 * Small HTTP client for health probes and doctor's IMDS checks (node:http, loopback or link-local
 * only). Bodies are capped and never logged: a token or credential body must not reach the output.
 */

/** Timeout of one probe request (ms). */
export const PROBE_TIMEOUT_MS = 3_000;
/** Largest response body kept (bytes). */
export const PROBE_MAX_BODY = 64 * 1024;

export interface ProbeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface ProbeRequest {
  url: string;
  method?: 'GET' | 'PUT' | 'HEAD';
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** Resolves with the response, or rejects with a short reason (connection refused, timeout...). */
export function probe(req: ProbeRequest): Promise<ProbeResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(req.url);
    const r = http.request(
      {
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port === '' ? 80 : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: req.method ?? 'GET',
        headers: { ...req.headers },
        agent: false,
        timeout: req.timeoutMs ?? PROBE_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < PROBE_MAX_BODY) chunks.push(c.subarray(0, PROBE_MAX_BODY - size));
          size += c.length;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', (e) => reject(e));
      },
    );
    r.on('timeout', () => r.destroy(new Error(`timed out after ${req.timeoutMs ?? PROBE_TIMEOUT_MS} ms`)));
    r.on('error', (e: NodeJS.ErrnoException) => reject(new Error(e.code ? `${e.code}` : e.message)));
    r.end();
  });
}

export interface HealthTarget {
  url: string;
  /** True: only a 2xx answer is healthy (an explicit health URL). False: any HTTP answer is. */
  requireOk: boolean;
}

export interface HealthResult {
  healthy: boolean;
  detail: string;
}

/**
 * The default probe asks the guard's listen port: any HTTP answer proves a live HTTP server there
 * (the guard may well refuse the probe by policy). An explicit --health-url (the guard's admin
 * /healthz) must answer 2xx.
 */
export function defaultHealthTarget(port: number, healthUrl: string | undefined): HealthTarget {
  if (healthUrl) return { url: healthUrl, requireOk: true };
  return { url: `http://127.0.0.1:${port}/`, requireOk: false };
}

export async function checkHealth(target: HealthTarget, timeoutMs = PROBE_TIMEOUT_MS): Promise<HealthResult> {
  try {
    const r = await probe({ url: target.url, timeoutMs });
    const ok = target.requireOk ? r.status >= 200 && r.status < 300 : r.status > 0;
    return { healthy: ok, detail: `${target.url} answered ${r.status}` };
  } catch (err) {
    return { healthy: false, detail: `${target.url}: ${(err as Error).message}` };
  }
}

/** Polls until healthy or the deadline (ms) passes; interval 250 ms. */
export async function waitHealthy(target: HealthTarget, deadlineMs: number): Promise<HealthResult> {
  const end = Date.now() + deadlineMs;
  let last = await checkHealth(target);
  while (!last.healthy && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 250));
    last = await checkHealth(target, Math.max(250, Math.min(PROBE_TIMEOUT_MS, end - Date.now())));
  }
  return last;
}
