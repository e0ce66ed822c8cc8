import { z } from 'zod';

/**
 * Config sections for where events and alerts go, and the admin endpoint. The guard's config schema
 * (src/config) embeds these; the event outputs (outputs.ts) consume them.
 * Every size and time has a finite default, documented with its unit.
 */

export const eventsConfigSchema = z
  .object({
    /** Write one JSON line per request to stdout. */
    stdout: z.boolean().default(false),
    /** Append JSON lines to this file. */
    file: z.string().min(1).optional(),
    /** SQLite event store. */
    db: z.string().min(1).optional(),
  })
  .strict();

export const alertsConfigSchema = z
  .object({
    /** Generic webhooks (--alert URL). */
    webhooks: z.array(z.object({ url: z.url() }).strict()).default([]),
    /** Do not alert on allowed requests (metatrapd's -quiet). */
    quiet: z.boolean().default(true),
  })
  .strict();

export const adminConfigSchema = z
  .object({
    /** HOST:PORT of the admin endpoint (/healthz, /readyz, /metrics); loopback only. */
    listen: z.string().min(1).optional(),
  })
  .strict();

export type EventsConfig = z.infer<typeof eventsConfigSchema>;
export type AlertsConfig = z.infer<typeof alertsConfigSchema>;
export type AdminConfig = z.infer<typeof adminConfigSchema>;
