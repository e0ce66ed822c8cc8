import { request } from 'node:http';
import { createEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';

const running: Emulator[] = [];

/** Creates and starts an emulator; stopEmulators() (in afterEach) closes every one started. */
/** The headers each flavour's own clients send (and the emulator requires). */
export const GOOGLE = { 'metadata-flavor': 'Google' };
export const AZURE = { metadata: 'true' };
export const ORACLE = { authorization: 'Bearer Oracle' };
export const ALI_TTL = 'x-aliyun-ecs-metadata-token-ttl-seconds';
export const ALI_TOKEN = 'x-aliyun-ecs-metadata-token';

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const e = createEmulator(options);
  running.push(e);
  await e.start();
  return e;
}

export async function stopEmulators(): Promise<void> {
  await Promise.all(running.splice(0).map((e) => e.close()));
}

/** A raw HTTP client for emulator tests: exact headers, no keep-alive agent, bounded time. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function raw(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false, timeout: 5_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const TTL = 'x-aws-ec2-metadata-token-ttl-seconds';
export const TOKEN = 'x-aws-ec2-metadata-token';

/** Gets an IMDSv2 token (never print it). */
export async function getToken(base: string, ttl = 21600): Promise<string> {
  const r = await raw(`${base}/latest/api/token`, { method: 'PUT', headers: { [TTL]: String(ttl) } });
  if (r.status !== 200) throw new Error(`token PUT answered ${r.status}`);
  return r.body;
}
