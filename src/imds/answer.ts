import type { ServerResponse } from 'node:http';

/**
 * How a metadata service writes an answer on the wire, shared by the emulator, the guard's refusals
 * and the trap, so that all three look the same to a client: header names in the service's casing
 * (X-Aws-Ec2-Metadata-Token-Ttl-Seconds), in the order given, then Content-Length and
 * `Connection: close` (the service closes every connection after one answer).
 */

export interface ImdsAnswer {
  status: number;
  /** Lower-case names, in the order they are sent. */
  headers: Record<string, string>;
  body: string;
}

/** x-aws-ec2-metadata-token-ttl-seconds -> X-Aws-Ec2-Metadata-Token-Ttl-Seconds, as the services write them. */
export function canonicalHeaderName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/** Writes `a` and ends the response; the connection closes after it. A HEAD answer has no body. */
export function writeImdsAnswer(res: ServerResponse, a: ImdsAnswer): void {
  const body = Buffer.from(a.body, 'utf8');
  res.statusCode = a.status;
  for (const [k, v] of Object.entries(a.headers)) res.setHeader(canonicalHeaderName(k), v);
  res.setHeader('Content-Length', body.length);
  res.setHeader('Connection', 'close');
  res.end(body);
}
