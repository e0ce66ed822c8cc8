import { randomInt } from 'node:crypto';
import type { ClassifiedRequest } from '../../imds/classify.js';
import type { Caller } from '../attribution/types.js';
import type { Decision } from '../policy/types.js';
import type { EventToken } from '../tokens/guard.js';
import type { Action, EventRecorder, GuardEvent, GuardMode } from './types.js';

/**
 * Building the one event of a request, and handing it to the recorders. Everything here copies
 * bounded, secret-free facts: never a header value other than the User-Agent and Host (clipped).
 */

/** Longest User-Agent and Host header kept in an event, characters. */
export const MAX_USER_AGENT = 512;
export const MAX_HOST_HEADER = 256;
/** Longest method kept in an event, characters. */
export const MAX_METHOD = 16;

/** Time-ordered unique event ids, one sequence per guard. */
export class EventIds {
  #seq = 0;
  readonly #tag = randomInt(0x10000).toString(16).padStart(4, '0');

  next(nowMs: number): string {
    this.#seq = (this.#seq + 1) % 0x1000000;
    return `${nowMs.toString(36).padStart(9, '0')}-${this.#tag}-${this.#seq.toString(36).padStart(5, '0')}`;
  }
}

/** What the guard learned about one request, from its arrival to its end. */
export interface RequestRecord {
  id: string;
  /** Arrival, ms since the epoch. */
  startMs: number;
  host: string;
  mode: GuardMode;
  flavor: string;
  /** The method as sent (when the request could not be classified) or classified. */
  method: string;
  /** The path when there is no classified request ("-" for a socket-level refusal). */
  path?: string;
  cls?: ClassifiedRequest;
  client: { address: string; port: number };
  decision: Decision;
  action: Action;
  status: number;
  alert: boolean;
  upstream?: GuardEvent['upstream'];
  caller?: Caller;
  token?: EventToken;
  attributionMs?: number;
  durationMs?: number;
}

export function buildEvent(r: RequestRecord): GuardEvent {
  const cls = r.cls;
  const request: GuardEvent['request'] = {
    method: (cls?.method ?? r.method).slice(0, MAX_METHOD),
    path: cls?.path || r.path || '-',
    version: cls?.version ?? 'unknown',
    flavor: r.flavor,
    client: { address: r.client.address, port: r.client.port },
  };
  if (cls?.userAgent !== undefined) request.userAgent = cls.userAgent.slice(0, MAX_USER_AGENT);
  if (cls?.host !== undefined) request.hostHeader = cls.host.slice(0, MAX_HOST_HEADER);
  const e: GuardEvent = {
    v: 1,
    id: r.id,
    time: new Date(r.startMs).toISOString(),
    host: r.host,
    mode: r.mode,
    decision: r.decision.decision,
    action: r.action,
    rule: r.decision.rule,
    reason: r.decision.reason,
    request,
    status: r.status,
    alert: r.alert,
  };
  if (r.durationMs !== undefined) e.durationMs = r.durationMs;
  if (r.upstream) e.upstream = r.upstream;
  if (r.caller) {
    // the socket knows whether the client shares the guard's network namespace
    e.caller =
      r.caller.netns === undefined && cls?.clientNetns !== undefined
        ? { ...r.caller, netns: cls.clientNetns }
        : r.caller;
  }
  if (r.token) e.token = r.token;
  if (r.attributionMs !== undefined) e.attributionMs = r.attributionMs;
  return e;
}

/** Hands an event to every recorder; a recorder that throws is skipped (and logged), never the guard. */
export function emitEvent(
  recorders: readonly EventRecorder[],
  event: GuardEvent,
  log: (message: string) => void,
): void {
  for (const r of recorders) {
    try {
      r.record(event);
    } catch (err) {
      log(`events: a recorder threw and was skipped: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}
