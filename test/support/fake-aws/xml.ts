/** Minimal XML writing for the fake AWS server's responses. */

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;',
  );
}

export type XmlValue = string | number | boolean | Date | null | undefined;

/** <tag>value</tag> for a scalar (escaped), or '' when the value is null/undefined. */
export function leaf(tag: string, value: XmlValue): string {
  if (value === null || value === undefined) return '';
  const text = value instanceof Date ? value.toISOString() : String(value);
  return `<${tag}>${esc(text)}</${tag}>`;
}

/** <tag>...children (already XML)...</tag>, or '' when children is null/undefined. */
export function node(tag: string, children: string | string[] | null | undefined): string {
  if (children === null || children === undefined) return '';
  return `<${tag}>${Array.isArray(children) ? children.join('') : children}</${tag}>`;
}

/** EC2 lists: <tag><item>..</item>...</tag>. */
export function ec2List(tag: string, items: readonly string[]): string {
  return `<${tag}>${items.map((i) => `<item>${i}</item>`).join('')}</${tag}>`;
}

/** awsquery lists: <tag><member>..</member>...</tag>. */
export function queryList(tag: string, items: readonly string[]): string {
  return `<${tag}>${items.map((i) => `<member>${i}</member>`).join('')}</${tag}>`;
}

export const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';
