import type { Header } from './raw-http.js';

/** Raw IMDS requests for adversarial tests: exact bytes, CRLF line ends, latin1 strings. */

export const METADATA_HOST = '169.254.169.254';
export const TTL_HEADER: Header = ['X-aws-ec2-metadata-token-ttl-seconds', '21600'];
export const TOKEN_HEADER_NAME = 'X-aws-ec2-metadata-token';
export const SECRET_HEADER_NAME = 'X-Meta-Auth';

/** A request: start line, headers as given (no Host added), an empty line, then the body. */
export function request(method: string, target: string, headers: readonly Header[], body = ''): string {
  let s = `${method} ${target} HTTP/1.1\r\n`;
  for (const [k, v] of headers) s += `${k}: ${v}\r\n`;
  return `${s}\r\n${body}`;
}

/** The token PUT as the SDKs send it, with `extra` headers after the TTL. */
export function tokenPut(extra: readonly Header[] = [], host = METADATA_HOST): string {
  return request('PUT', '/latest/api/token', [['Host', host], TTL_HEADER, ...extra]);
}

/** A token-bearing GET. */
export function v2Get(
  path: string,
  token: string,
  extra: readonly Header[] = [],
  host = METADATA_HOST,
): string {
  return request('GET', path, [['Host', host], [TOKEN_HEADER_NAME, token], ...extra]);
}

/** A tokenless GET with an allowed User-Agent (the guard forwards it by default). */
export function v1Get(path: string, extra: readonly Header[] = [], host = METADATA_HOST): string {
  return request('GET', path, [['Host', host], ['User-Agent', 'aws-cli/2.15.0'], ...extra]);
}

/** n padding headers named `name` (numbered when it ends in '-'), value `value`. */
export function padding(n: number, name = 'X-Pad', value = 'x'): Header[] {
  const out: Header[] = [];
  for (let i = 0; i < n; i++) out.push([name.endsWith('-') ? `${name}${i}` : name, value]);
  return out;
}

/** The header lines of a request string (between the start line and the empty line). */
export function headerLines(raw: string): Header[] {
  const end = raw.indexOf('\r\n\r\n');
  const lines = raw
    .slice(0, end === -1 ? raw.length : end)
    .split('\r\n')
    .slice(1);
  return lines.map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')] as const;
  });
}
