/** JSON and NDJSON renderers: always one valid document, or one valid document per line. */

/** One JSON document, pretty-printed, with a final newline. */
export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** One compact JSON document per line (NDJSON / JSON Lines). */
export function renderNdjson(records: Iterable<unknown>): string {
  let out = '';
  for (const r of records) out += `${JSON.stringify(r)}\n`;
  return out;
}
