import { z } from 'zod';

/**
 * Config section `events`: where the guard's events go (stdout, a JSON-lines file, the SQLite store)
 * and how long the store keeps them. Every size and time has a finite default; the unit is in the
 * key's name (Ms: milliseconds, Bytes). docs/config.md documents every key.
 */

const DAY_MS = 86_400_000;
const MIB = 1024 * 1024;

export const retentionSchema = z
  .object({
    /** Events older than this are deleted, milliseconds (default 30 days). */
    maxAgeMs: z
      .number()
      .int()
      .min(60_000)
      .max(3650 * DAY_MS)
      .default(30 * DAY_MS),
    /** The database is kept under this many bytes of pages, oldest events deleted first (default 256 MiB). */
    maxBytes: z
      .number()
      .int()
      .min(MIB)
      .max(1024 * 1024 * MIB)
      .default(256 * MIB),
  })
  .strict();

export const eventsConfigSchema = z
  .object({
    /** Write one JSON line per request to stdout. */
    stdout: z.boolean().default(false),
    /** Append JSON lines to this file. */
    file: z.string().min(1).optional(),
    /** SQLite event store. */
    db: z.string().min(1).optional(),
    retention: retentionSchema.prefault({}),
    /** Events buffered for the store before inserts, count; beyond it they are dropped and counted. */
    bufferSize: z.number().int().min(1).max(1_000_000).default(10_000),
  })
  .strict();

export type EventsConfig = z.infer<typeof eventsConfigSchema>;
