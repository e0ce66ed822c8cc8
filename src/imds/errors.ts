import { http } from '../net/http.js';

import { canonicalHeaderName, type ImdsAnswer } from './answer.js';
import type { Flavor } from './flavors.js';
import { awsErrorPage, statusTitle } from './responses.js';

/**
 * The metadata services' own error answers, per flavour: the headers every answer of the service
 * carries, and the body of an error of a given status. The emulator answers with them and the guard
 * refuses with them, so a refusal looks like the service refusing.
 */

/** Headers every answer of the flavour's service carries, first, in this order. */
export const SERVER_HEADERS: Readonly<Record<Flavor, Readonly<Record<string, string>>>> = {
  aws: { server: 'EC2ws', 'accept-ranges': 'none' },
  alibaba: { server: 'Tengine' },
  gcp: {
    'metadata-flavor': 'Google',
    server: 'Metadata Server for VM',
    'x-frame-options': 'SAMEORIGIN',
    'x-xss-protection': '0',
  },
  azure: { server: 'Microsoft-IIS/10.0' },
  digitalocean: {},
  oci: {},
};

/** The body of Google's error pages. */
export function gcpErrorPage(status: number, message: string): string {
  return `<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error ${status}</title>\n  <p><b>${status}.</b> <ins>That's an error.</ins>\n  <p>${message}  <ins>That's all we know.</ins>\n`;
}

const GCP_MESSAGES: Readonly<Record<number, string>> = {
  400: 'Your client has issued a malformed or illegal request.',
  403: 'Your client does not have permission to get this URL from this server.',
  404: 'The requested URL was not found on this server.',
  405: 'Method not allowed.',
};

const OCI_CODES: Readonly<Record<number, string>> = {
  400: 'InvalidParameter',
  401: 'NotAuthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
};

export interface ErrorOptions {
  /** The request was on the token path (a 405 there allows OPTIONS, PUT). */
  tokenPath?: boolean;
}

/** The answer of the flavour's service refusing with `status` (no server headers: see imdsRefusal). */
export function flavorError(flavor: Flavor, status: number, opts: ErrorOptions = {}): ImdsAnswer {
  switch (flavor) {
    case 'aws':
    case 'alibaba': {
      const headers: Record<string, string> = { 'content-type': 'text/html' };
      if (status === 405) headers['allow'] = opts.tokenPath ? 'OPTIONS, PUT' : 'GET, HEAD';
      return { status, headers, body: awsErrorPage(status) };
    }
    case 'gcp':
      return {
        status,
        headers: { 'content-type': 'text/html; charset=UTF-8' },
        body: gcpErrorPage(status, GCP_MESSAGES[status] ?? `${statusTitle(status)}.`),
      };
    case 'azure':
      return {
        status,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ error: statusTitle(status) }),
      };
    case 'oci':
      return {
        status,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({
          code: OCI_CODES[status] ?? statusTitle(status).replace(/ /g, ''),
          message: statusTitle(status),
        }),
      };
    case 'digitalocean':
      return {
        status,
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: `${statusTitle(status)}\n`,
      };
  }
}

/** A refusal as the flavour's service sends it: its server headers, then the error. */
export function imdsRefusal(flavor: Flavor, status: number, opts: ErrorOptions = {}): ImdsAnswer {
  const e = flavorError(flavor, status, opts);
  return { status, headers: { ...SERVER_HEADERS[flavor], ...e.headers }, body: e.body };
}

/**
 * The bytes writeImdsAnswer would send for `a`, for a socket the HTTP parser gave up on (no
 * ServerResponse exists): the same status line, headers, order and `Date` at the end.
 */
export function rawImdsAnswer(a: ImdsAnswer, now: Date = new Date()): string {
  const body = Buffer.from(a.body, 'utf8');
  let head = `HTTP/1.1 ${a.status} ${http.STATUS_CODES[a.status] ?? statusTitle(a.status)}\r\n`;
  for (const [k, v] of Object.entries(a.headers)) head += `${canonicalHeaderName(k)}: ${v}\r\n`;
  head += `Content-Length: ${body.length}\r\nConnection: close\r\nDate: ${now.toUTCString()}\r\n\r\n`;
  return head + a.body;
}
