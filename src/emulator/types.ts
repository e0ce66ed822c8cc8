import type { IncomingHttpHeaders } from 'node:http';
import type { CredentialSource } from './credentials.js';
import type { InstanceModel } from './instance.js';

/** Runtime settings, changeable while the emulator runs (admin endpoint, setSettings). */
export interface EmulatorSettings {
  /** HttpTokens: with `required`, tokenless requests get 401 (AWS), v1 paths 404 (OCI), ... */
  tokens: 'optional' | 'required';
  /** HttpEndpoint: `disabled` answers 403 to everything. */
  endpoint: 'enabled' | 'disabled';
  /** HttpPutResponseHopLimit 1..64: stored and reported only; Node cannot set a per-response IP TTL. */
  hopLimit: number;
}

/** What a flavour handler sees of a request: no sockets, so handlers are testable without a server. */
export interface EmuRequest {
  method: string;
  /** Path only, percent-decoded. */
  path: string;
  query: URLSearchParams;
  /** Header names lower-case, as node:http gives them. */
  headers: IncomingHttpHeaders;
}

export interface EmuResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The request was a (successful or refused) token PUT. */
  tokenPut?: boolean;
}

/** Shared state a flavour handler reads. */
export interface EmulatorState {
  readonly instance: InstanceModel;
  readonly settings: Readonly<EmulatorSettings>;
  readonly now: () => number;
  /** undefined when the instance has no IAM role. */
  readonly credentials: CredentialSource | undefined;
}

export type FlavorHandler = (req: EmuRequest, state: EmulatorState) => EmuResponse;

/** First value of a header, or undefined. */
export function header(req: EmuRequest, name: string): string | undefined {
  const v = req.headers[name];
  if (Array.isArray(v)) return v[0];
  return v;
}

export function hasHeader(req: EmuRequest, name: string): boolean {
  return req.headers[name] !== undefined;
}
