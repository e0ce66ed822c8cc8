/** Escaping for the HTML reports: every value that reaches the page goes through one of these. */

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text or attribute value (quoted with "). */
export function esc(value: unknown): string {
  const s = value === null || value === undefined ? '' : String(value);
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}

/**
 * JSON for a <script type="application/json"> element: `<`, `>` and `&` become \u escapes (so no
 * "</script>" or "<!--" can end or change the element), and so do U+2028 and U+2029.
 * JSON.parse(textContent) gives back the same value.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A number with thousands separators (en-US, fixed so reports read the same everywhere). */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A percentage as the documents carry it (one decimal), e.g. "63.2%". */
export function fmtPct(p: number): string {
  return `${p.toFixed(1)}%`;
}

/** An ISO time as "2026-11-22 18:57 UTC". */
export function fmtTime(iso: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** An ISO time to the second: "2026-11-22 18:57:03". */
export function fmtSecond(iso: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** A token safe inside an id or data-testid: [A-Za-z0-9_-], other characters as _. */
export function slug(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '_');
}
