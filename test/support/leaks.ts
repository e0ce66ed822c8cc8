/**
 * Which secret values leak into a text: each value, or any piece of it `piece` characters long
 * (12 by default: what redaction promises to find), named by its label and the offset of the first
 * piece found. An empty list means nothing leaked.
 */
export function leaks(text: string, values: Record<string, string>, piece = 12): string[] {
  const out: string[] = [];
  for (const [label, v] of Object.entries(values)) {
    for (let i = 0; i + piece <= v.length; i++)
      if (text.includes(v.slice(i, i + piece))) {
        out.push(`${label}@${i}`);
        break;
      }
  }
  return out;
}
