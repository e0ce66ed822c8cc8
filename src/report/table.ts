/** Plain-text tables for a terminal. Cells are sanitized: control characters never reach the terminal. */
import { type Cell, type Column, cellText } from './columns.js';

export const TABLE_DEFAULTS = {
  /** Characters per cell before it is cut. */
  maxWidth: 64,
  /** Spaces between columns. */
  gap: 2,
} as const;

/** Replaces control characters (escape sequences, newlines, tabs) with a visible "?" or a space. */
export function sanitizeCell(s: string): string {
  return s.replace(/[\t\n\r]/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '?');
}

function truncate(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, Math.max(0, width - 1))}…`;
}

/**
 * Renders rows as an aligned table with an upper-case header line. Returns '' for no columns; for no
 * rows, the header alone (or `empty` when given).
 */
export function renderTable<T>(
  rows: readonly T[],
  columns: readonly Column<T>[],
  options: { empty?: string } = {},
): string {
  if (columns.length === 0) return '';
  if (rows.length === 0 && options.empty !== undefined) return `${options.empty}\n`;
  const cells: string[][] = rows.map((r) =>
    columns.map((c) =>
      truncate(sanitizeCell(cellText(c.value(r) as Cell)), c.maxWidth ?? TABLE_DEFAULTS.maxWidth),
    ),
  );
  const headers = columns.map((c) => sanitizeCell(c.header.toUpperCase()));
  const widths = columns.map((_, i) =>
    Math.max(headers[i]?.length ?? 0, ...cells.map((row) => row[i]?.length ?? 0)),
  );
  const gap = ' '.repeat(TABLE_DEFAULTS.gap);
  const line = (vals: string[]) =>
    vals
      .map((v, i) => {
        const w = widths[i] ?? 0;
        return columns[i]?.align === 'right' ? v.padStart(w) : v.padEnd(w);
      })
      .join(gap)
      .trimEnd();
  return `${[line(headers), ...cells.map(line)].join('\n')}\n`;
}
