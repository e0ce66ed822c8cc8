/**
 * Small inline SVG charts (no library): horizontal stacked bars, a line chart over time, and stacked
 * columns over time. Every label and value is escaped; every shape has a <title> for hover.
 * Charts scale to their container (viewBox, width 100%).
 */

import { esc, fmtInt } from './escape.js';
import { COLORS } from './page.js';

export interface Segment {
  name: string;
  value: number;
  color: string;
}

export interface BarRow {
  label: string;
  segments: Segment[];
  /** Sum of the segments (the bar's 100%). */
  total: number;
  /** Shown right of the bar, e.g. "63.2% enforced". */
  valueLabel: string;
  /** data-testid of the value label. */
  testid: string;
}

const W = 1000;

function round(n: number): string {
  return (Math.round(n * 10) / 10).toString();
}

/** Horizontal 100% stacked bars, one per row, with an axis of 0..100%. */
export function stackedBars(title: string, rows: readonly BarRow[]): string {
  const labelW = 240;
  const valueW = 160;
  const barW = W - labelW - valueW - 10;
  const rowH = 28;
  const top = 22;
  const h = top + rows.length * rowH + 6;
  const parts: string[] = [];
  parts.push('<g class="axis">');
  for (const p of [0, 25, 50, 75, 100]) {
    const x = labelW + (barW * p) / 100;
    parts.push(
      `<line x1="${round(x)}" y1="${top - 4}" x2="${round(x)}" y2="${h - 4}" stroke="${COLORS.grid}" stroke-dasharray="${p === 0 || p === 100 ? '0' : '3 3'}"/>`,
      `<text x="${round(x)}" y="${top - 8}" text-anchor="middle">${p}%</text>`,
    );
  }
  parts.push('</g>');
  rows.forEach((r, k) => {
    const y = top + k * rowH + 5;
    const label = r.label.length > 34 ? `${r.label.slice(0, 33)}…` : r.label;
    parts.push(
      `<text x="${labelW - 10}" y="${y + 13}" text-anchor="end"><title>${esc(r.label)}</title>${esc(label)}</text>`,
    );
    if (r.total <= 0) {
      parts.push(
        `<rect x="${labelW}" y="${y}" width="${barW}" height="18" fill="none" stroke="${COLORS.grid}" rx="3"/>`,
      );
    } else {
      let x = labelW;
      for (const s of r.segments) {
        if (s.value <= 0) continue;
        const w = (barW * s.value) / r.total;
        parts.push(
          `<rect x="${round(x)}" y="${y}" width="${round(Math.max(w, 0.5))}" height="18" fill="${esc(s.color)}"><title>${esc(`${r.label}: ${s.name} ${fmtInt(s.value)} of ${fmtInt(r.total)}`)}</title></rect>`,
        );
        x += w;
      }
    }
    parts.push(
      `<text x="${labelW + barW + 10}" y="${y + 13}" data-testid="${esc(r.testid)}">${esc(r.valueLabel)}</text>`,
    );
  });
  return `<div class="chartwrap"><svg class="chart" viewBox="0 0 ${W} ${h}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>${esc(title)}</title>${parts.join('')}</svg></div>`;
}

export interface LineSeries {
  name: string;
  color: string;
  values: readonly number[];
}

function dateLabel(ms: number, spanMs: number): string {
  const iso = new Date(ms).toISOString();
  if (spanMs < 600_000) return iso.slice(11, 19);
  if (spanMs < 2 * 86_400_000) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return iso.slice(0, 10);
}

/** First tick label starts at its x, the last ends there, the others are centred (none is clipped). */
function anchor(k: number, n: number): string {
  if (n > 1 && k === 0) return 'start';
  if (n > 1 && k === n - 1) return 'end';
  return 'middle';
}

/** Five horizontal grid lines from 0 to yMax (the first solid), each with its label on the left. */
function yGrid(
  yMax: number,
  yOf: (v: number) => number,
  left: number,
  right: number,
  fmt: (v: number) => string,
): string[] {
  const out: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    const y = yOf(v);
    out.push(
      `<line x1="${left}" y1="${round(y)}" x2="${W - right}" y2="${round(y)}" stroke="${COLORS.grid}" stroke-dasharray="${k === 0 ? '0' : '3 3'}"/>`,
      `<text x="${left - 6}" y="${round(y + 4)}" text-anchor="end">${esc(fmt(v))}</text>`,
    );
  }
  return out;
}

/** Lines over time on a 0..yMax axis (percentages by default), with a dot per point. */
export function lineChart(
  title: string,
  times: readonly number[],
  series: readonly LineSeries[],
  opts: { yMax?: number; yFormat?: (n: number) => string } = {},
): string {
  const yMax = opts.yMax ?? 100;
  const yFmt = opts.yFormat ?? ((n: number) => `${n}%`);
  const left = 48;
  const right = 20;
  const top = 14;
  const h = 240;
  const bottom = h - 30;
  const plotW = W - left - right;
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const span = t1 - t0;
  const xOf = (t: number) => (span === 0 ? left + plotW / 2 : left + ((t - t0) / span) * plotW);
  const yOf = (v: number) => bottom - (Math.max(0, Math.min(yMax, v)) / yMax) * (bottom - top);
  const parts: string[] = ['<g class="axis">'];
  parts.push(...yGrid(yMax, yOf, left, right, yFmt));
  const ticks = span === 0 ? [t0] : [0, 1, 2, 3, 4].map((k) => t0 + (span * k) / 4);
  ticks.forEach((t, k) => {
    parts.push(
      `<text x="${round(xOf(t))}" y="${bottom + 18}" text-anchor="${anchor(k, ticks.length)}">${esc(dateLabel(t, span))}</text>`,
    );
  });
  parts.push('</g>');
  for (const s of series) {
    const pts = times.map((t, k) => [xOf(t), yOf(s.values[k] ?? 0)] as const);
    if (pts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${esc(s.color)}" stroke-width="2.5" stroke-linejoin="round" points="${pts.map(([x, y]) => `${round(x)},${round(y)}`).join(' ')}"/>`,
      );
    }
    pts.forEach(([x, y], k) => {
      const t = times[k] as number;
      parts.push(
        `<circle cx="${round(x)}" cy="${round(y)}" r="3.5" fill="#fff" stroke="${esc(s.color)}" stroke-width="2"><title>${esc(`${new Date(t).toISOString()}: ${s.name} ${yFmt(s.values[k] ?? 0)}`)}</title></circle>`,
      );
    });
  }
  return `<div class="chartwrap"><svg class="chart" viewBox="0 0 ${W} ${h}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>${esc(title)}</title>${parts.join('')}</svg></div>`;
}

/** The smallest 1, 2 or 5 x 10^k at or above n (at least 1). */
export function niceMax(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

/** Stacked columns over time (one per bucket), e.g. allowed and denied requests per hour. */
export function timeColumns(
  title: string,
  buckets: ReadonlyArray<{ startMs: number; values: readonly number[] }>,
  series: ReadonlyArray<{ name: string; color: string }>,
  bucketMs: number,
): string {
  const left = 52;
  const right = 16;
  const top = 14;
  const h = 240;
  const bottom = h - 30;
  const plotW = W - left - right;
  const totals = buckets.map((b) => b.values.reduce((a, v) => a + v, 0));
  // Four equal steps of a whole, round size: 1, 2 or 5 x 10^k.
  const step = niceMax(Math.max(1, ...totals) / 4);
  const yMax = step * 4;
  const yOf = (v: number) => bottom - (v / yMax) * (bottom - top);
  const n = Math.max(1, buckets.length);
  const slot = plotW / n;
  const colW = Math.max(1, slot * 0.8);
  const parts: string[] = ['<g class="axis">'];
  parts.push(...yGrid(yMax, yOf, left, right, fmtInt));
  const span = n * bucketMs;
  const labelEvery = Math.max(1, Math.ceil(n / 6));
  for (let k = 0; k < buckets.length; k += labelEvery) {
    const b = buckets[k] as { startMs: number };
    parts.push(
      `<text x="${round(left + slot * k + (k === 0 ? 0 : slot / 2))}" y="${bottom + 18}" text-anchor="${k === 0 ? 'start' : 'middle'}">${esc(dateLabel(b.startMs, span))}</text>`,
    );
  }
  parts.push('</g>');
  buckets.forEach((b, k) => {
    let acc = 0;
    const x = left + slot * k + (slot - colW) / 2;
    b.values.forEach((v, s) => {
      if (v <= 0) return;
      const y0 = yOf(acc);
      const y1 = yOf(acc + v);
      acc += v;
      const meta = series[s] ?? { name: `series ${s}`, color: COLORS.accent };
      parts.push(
        `<rect x="${round(x)}" y="${round(y1)}" width="${round(colW)}" height="${round(Math.max(0.5, y0 - y1))}" fill="${esc(meta.color)}"><title>${esc(`${new Date(b.startMs).toISOString()}: ${fmtInt(v)} ${meta.name}`)}</title></rect>`,
      );
    });
  });
  return `<div class="chartwrap"><svg class="chart" viewBox="0 0 ${W} ${h}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>${esc(title)}</title>${parts.join('')}</svg></div>`;
}
