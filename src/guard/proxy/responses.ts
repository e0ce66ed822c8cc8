import type { Flavor } from '../../imds/flavors.js';
import { awsErrorPage, statusTitle } from '../../imds/responses.js';

/**
 * IMDS-like error answers: the status code and the small HTML page the AWS metadata service sends
 * (`Server: EC2ws`), or a short text body for other flavours. They never name the guard's rules
 * unless guard.revealRule is set (then only the rule name, in a header).
 */

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const CACHE = new Map<string, ErrorAnswer>();

/** The answer for a refusal. Cached per (flavor, status): the hot path allocates nothing here. */
export function errorAnswer(flavor: Flavor, status: number): ErrorAnswer {
  const key = `${flavor}:${status}`;
  let a = CACHE.get(key);
  if (a === undefined) {
    const aws = flavor === 'aws' || flavor === 'alibaba';
    const body = aws ? awsErrorPage(status) : `${statusTitle(status)}\n`;
    const headers: Record<string, string> = {
      'content-type': aws ? 'text/html' : 'text/plain; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
    };
    if (flavor === 'aws') headers['server'] = 'EC2ws';
    if (status === 405) headers['allow'] = 'OPTIONS, GET, HEAD, PUT';
    a = Object.freeze({ status, headers: Object.freeze(headers) as Record<string, string>, body });
    CACHE.set(key, a);
  }
  return a;
}

/** A raw HTTP/1.1 error response for a socket the HTTP parser gave up on (clientError). */
export function rawErrorResponse(flavor: Flavor, status: number): string {
  const a = errorAnswer(flavor, status);
  let head = `HTTP/1.1 ${status} ${statusTitle(status)}\r\n`;
  for (const [k, v] of Object.entries(a.headers)) head += `${k}: ${v}\r\n`;
  return `${head}connection: close\r\n\r\n${a.body}`;
}
