/**
 * CSV (RFC 4180 quoting, "\n" line ends, a header row). Cells with a comma, quote, CR or LF, or with
 * leading/trailing spaces are quoted, quotes doubled. With `formulaGuard` (default on) a text cell
 * starting with = + - @ TAB or CR gets a leading apostrophe, so a spreadsheet never runs it as a
 * formula (CSV injection); numbers are never changed.
 */
import { type Column, cellText } from './columns.js';

export function escapeCsvCell(value: string, formulaGuard = true): string {
  let v = value;
  if (formulaGuard && /^[=+\-@\t\r]/.test(v)) v = `'${v}`;
  if (/[",\r\n]/.test(v) || /^\s|\s$/.test(v)) return `"${v.replace(/"/g, '""')}"`;
  return v;
}

/**
 * The header row and one row per item. `header: false` gives the rows alone, to append to a CSV whose
 * header was already written (a streamed document).
 */
export function renderCsv<T>(
  rows: readonly T[],
  columns: readonly Column<T>[],
  options: { formulaGuard?: boolean; header?: boolean } = {},
): string {
  const guard = options.formulaGuard ?? true;
  const lines =
    options.header === false ? [] : [columns.map((c) => escapeCsvCell(c.header, false)).join(',')];
  for (const r of rows) {
    lines.push(
      columns
        .map((c) => {
          const v = c.value(r);
          return typeof v === 'number' ? String(v) : escapeCsvCell(cellText(v), guard);
        })
        .join(','),
    );
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
