import type { SettingOrigins } from './load.js';

/**
 * PURE: the guard's start-up line of where its settings came from, grouped by source in the order
 * they win (flags, then the environment, then the config file), e.g.
 * `flag --listen: guard.listen; environment MODE: guard.mode; config file /etc/imdsguard/config.yaml:
 * events.db, admin.listen; the rest are defaults`. Names only: values may be secrets.
 */
export function describeOrigins(origins: SettingOrigins): string {
  if (origins.size === 0) return 'every setting is a default';
  const bySource = new Map<string, string[]>();
  for (const [path, origin] of origins) bySource.set(origin, [...(bySource.get(origin) ?? []), path]);
  const rank = (origin: string) =>
    origin.startsWith('flag ') ? 0 : origin.startsWith('environment ') ? 1 : 2;
  const groups = [...bySource].sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]));
  return `${groups.map(([origin, paths]) => `${origin}: ${paths.sort().join(', ')}`).join('; ')}; the rest are defaults`;
}
