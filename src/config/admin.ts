import { z } from 'zod';
import { isLoopbackHost } from '../net/listen.js';

/** Config section `admin`: the admin endpoint (/healthz, /readyz, /metrics), on loopback only. */

const LISTEN = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;

/** Splits an admin HOST:PORT or [V6]:PORT. */
export function parseAdminListen(value: string): { host: string; port: number } | undefined {
  const m = LISTEN.exec(value.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2]) as string, port };
}

export const adminConfigSchema = z
  .object({
    /** HOST:PORT of the admin endpoint (/healthz, /readyz, /metrics); loopback only. */
    listen: z
      .string()
      .min(1)
      .refine((v) => parseAdminListen(v) !== undefined, 'must be HOST:PORT or [IPV6]:PORT')
      .refine((v) => {
        const a = parseAdminListen(v);
        return a === undefined || isLoopbackHost(a.host);
      }, 'must be a loopback address (127.0.0.1:PORT or [::1]:PORT): the admin endpoint is not authenticated')
      .optional(),
  })
  .strict();

export type AdminConfig = z.infer<typeof adminConfigSchema>;
