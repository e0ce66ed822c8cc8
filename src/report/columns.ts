/** A column of a table or CSV: a header and how to read the cell from a row. */
export type Cell = string | number | boolean | null | undefined;

export interface Column<T> {
  header: string;
  value: (row: T) => Cell;
  /** Tables only: right-align (numbers). */
  align?: 'left' | 'right';
  /** Tables only: longer cells are cut with an ellipsis (characters, default 64). */
  maxWidth?: number;
}

export function cellText(v: Cell): string {
  if (v === null || v === undefined) return '';
  return String(v);
}
