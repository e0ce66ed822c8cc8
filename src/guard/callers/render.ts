import { type CallerSummary, podLabel } from './summarize.js';

/**
 * PURE text rendering of caller summaries: a table, IMDSv1 callers first and marked, and a verdict
 * that answers "what breaks if you enforce IMDSv2 on this host".
 */

export interface RenderOptions {
  /** ANSI colour for IMDSv1 rows (only for a terminal). */
  color?: boolean;
  /** How many events the summaries cover (for the verdict). */
  events: number;
  /** Describes the window, e.g. "in the last 24h" or "in all recorded events". */
  window: string;
  /** Longest cell, characters; longer cells end in "…". Default 60. */
  maxCell?: number;
}

const COLUMNS = [
  '',
  'V1',
  'V2',
  'TOKEN',
  'DENIED',
  'LAST SEEN',
  'EXE',
  'USER',
  'POD',
  'CONTAINER',
  'LAST PATH',
] as const;
const NUMERIC = new Set<string>(['V1', 'V2', 'TOKEN', 'DENIED']);

export function renderCallers(summaries: readonly CallerSummary[], o: RenderOptions): string {
  const max = o.maxCell ?? 60;
  const cut = (s: string) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
  const lines: string[] = [];
  const v1 = summaries.filter((s) => s.v1 > 0);
  const v1Requests = v1.reduce((n, s) => n + s.v1, 0);

  if (summaries.length === 0) {
    lines.push(`No IMDS requests ${o.window} (${o.events} events read).`);
    return `${lines.join('\n')}\n`;
  }

  // The POD column only where attribution named pods (a Kubernetes node).
  const pods = summaries.some((s) => s.pod !== undefined);
  const columns = COLUMNS.filter((c) => pods || c !== 'POD');
  const all = summaries.map((s) => [
    s.v1 > 0 ? '!' : '',
    String(s.v1),
    String(s.v2),
    String(s.token),
    String(s.denied),
    s.lastSeen.replace(/\.\d+Z$/, 'Z'),
    cut(s.exe ?? (s.key === '(other callers)' ? '(other callers)' : '(unattributed)')),
    cut(s.user ?? '-'),
    cut(s.pod ? podLabel(s.pod) : '-'),
    cut(
      s.container
        ? `${s.container.runtime}:${s.container.id.slice(0, 12)}`
        : s.netns === 'other'
          ? '(other netns)'
          : '-',
    ),
    cut(s.lastPath),
  ]);
  const podAt = COLUMNS.indexOf('POD');
  const rows = pods ? all : all.map((r) => r.filter((_, i) => i !== podAt));
  const widths = columns.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const fmt = (cells: readonly string[]) =>
    cells
      .map((c, i) =>
        NUMERIC.has(columns[i] as string) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number),
      )
      .join('  ')
      .trimEnd();

  lines.push('What breaks if you enforce IMDSv2 on this host:');
  if (v1.length === 0) {
    lines.push(`  nothing that called ${o.window}: no IMDSv1 (tokenless) requests in ${o.events} events.`);
  } else {
    lines.push(
      `  ${v1.length} caller${v1.length === 1 ? '' : 's'} made ${v1Requests} IMDSv1 (tokenless) request${v1Requests === 1 ? '' : 's'} ${o.window}; they fail with 401 once tokens are required.`,
    );
    const blind = v1.filter((s) => s.unattributed).length;
    if (blind > 0) {
      lines.push(
        `  ${blind} of them could not be tied to a process (see the events' caller.error); run the guard as root to attribute them.`,
      );
    }
  }
  lines.push('');
  lines.push(fmt(columns));
  rows.forEach((r, i) => {
    const line = fmt(r);
    lines.push(o.color && (summaries[i]?.v1 ?? 0) > 0 ? `\x1b[1;31m${line}\x1b[0m` : line);
  });
  lines.push('');
  lines.push(
    '! = makes IMDSv1 calls. V2 = requests with a token, TOKEN = token requests (PUT /latest/api/token).',
  );
  return `${lines.join('\n')}\n`;
}
