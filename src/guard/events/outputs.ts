import type { AdminConfig, AlertsConfig, EventsConfig } from './config.js';
import type { EventRecorder } from './types.js';

/**
 * Builds every output of guard events from config: the event store, the alert pipeline (sinks,
 * spool, noise control) and the admin endpoint. The guard's wiring calls this once at start-up.
 */
export interface EventOutputsDeps {
  hostname: string;
  /** Readiness of the guard itself, for /readyz. */
  isReady: () => boolean;
}

export interface EventOutputs {
  recorders: EventRecorder[];
  /** The admin endpoint's URL when one is listening. */
  adminUrl?: string;
  close(): Promise<void>;
}

export async function createEventOutputs(
  _events: EventsConfig,
  _alerts: AlertsConfig,
  _admin: AdminConfig,
  _deps: EventOutputsDeps,
): Promise<EventOutputs> {
  // The event store, alert sinks and admin endpoint plug in here (issue: alerts, store, metrics).
  return { recorders: [], close: async () => {} };
}
