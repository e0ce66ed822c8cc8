/** Header maps for tests that classify requests: the guard judges node's raw list, so tests build one. */

export type HeaderMap = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The raw list (name, value, ...) of a header map, in its order; an array value is one line per value. */
export function rawHeaderList(h: HeaderMap): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    for (const x of typeof v === 'string' ? [v] : v) out.push(k, x);
  }
  return out;
}
