import { createHash, randomBytes } from 'node:crypto';
import type { InstanceModel } from '../instance.js';
import type { EmuResponse } from '../types.js';

/** Helpers shared by the non-AWS flavours. */

export function json(status: number, value: unknown, extra: Record<string, string> = {}): EmuResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...extra },
    body: JSON.stringify(value),
  };
}

export function plain(status: number, body: string, extra: Record<string, string> = {}): EmuResponse {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...extra }, body };
}

/** A stable decimal id derived from the instance (GCP instance ids, DigitalOcean droplet ids...). */
export function numericId(instance: InstanceModel, label: string, digits: number): string {
  const hex = createHash('sha256').update(instance.instanceId).update(label).digest('hex');
  const n = BigInt(`0x${hex.slice(0, 16)}`).toString();
  return `${(Number(n[0]) % 9) + 1}${n.slice(1)}`.padEnd(digits, '7').slice(0, digits);
}

/** A stable lower-case hex or base32-ish string derived from the instance. */
export function stableHex(instance: InstanceModel, label: string, length: number): string {
  let out = '';
  for (let i = 0; out.length < length; i++) {
    out += createHash('sha256').update(instance.instanceId).update(label).update(String(i)).digest('hex');
  }
  return out.slice(0, length);
}

/** A random opaque access token (never logged). */
export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** A JWT-shaped, unsigned-looking string (header.payload.signature). Not a valid signature. */
export function fakeJwt(claims: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'RS256', typ: 'JWT', kid: 'imdsguard-emulator' })}.${enc(claims)}.${randomToken(256)}`;
}

export function hasAnyHeader(headers: Record<string, unknown>, names: readonly string[]): boolean {
  return names.some((n) => headers[n] !== undefined);
}

export function kebabToCamel(s: string): string {
  return s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
