import { type Alert, overflowSummary, summaryAlert } from './alert.js';

/**
 * Noise control, pure: no clock, timer or I/O. The caller passes `now` (milliseconds since the epoch).
 *
 * - Per key (caller identity, rule, path): the first `perKey` alerts of a window pass; the rest are
 *   counted, and when the window closes one summary alert says "N more in the last <window>".
 *   perKey = 1 is plain dedup.
 * - Globally: at most `globalLimit` alerts pass per `globalWindowMs`, whatever their keys (an attacker
 *   scanning many paths makes many keys); the rest are counted into one global summary.
 * - At most `maxKeys` keys are tracked; alerts of new keys beyond that only meet the global limit.
 */
export interface NoiseOptions {
  /** Per-key window, milliseconds. */
  windowMs: number;
  /** Alerts of one key that pass per window (1 = dedup). */
  perKey: number;
  /** Global window, milliseconds. */
  globalWindowMs: number;
  /** Alerts that pass per global window, all keys together. */
  globalLimit: number;
  /** Keys tracked at once. */
  maxKeys: number;
}

export const DEFAULT_NOISE: NoiseOptions = {
  windowMs: 300_000,
  perKey: 1,
  globalWindowMs: 60_000,
  globalLimit: 120,
  maxKeys: 10_000,
};

interface Window {
  start: number;
  passed: number;
  suppressed: number;
  firstSuppressed: number;
  last?: Alert;
}

/** The identity part of the key: the executable, else the user, else the client address. */
export function callerIdentity(a: Alert): string {
  const c = a.caller;
  if (c?.exe) return `exe:${c.exe}${c.container ? `@${c.container}` : ''}`;
  if (c?.user) return `user:${c.user}`;
  if (c?.uid !== undefined) return `uid:${c.uid}`;
  return `addr:${a.request.client.address}`;
}

export function noiseKey(a: Alert): string {
  return `${callerIdentity(a)}\u0000${a.rule}\u0000${a.request.path}`;
}

export class NoiseFilter {
  private readonly keys = new Map<string, Window>();
  private global: Window;
  private suppressedCount = 0;

  private readonly opts: NoiseOptions;

  constructor(opts: NoiseOptions, now: number) {
    this.opts = opts;
    this.global = { start: now, passed: 0, suppressed: 0, firstSuppressed: 0 };
  }

  /** Alerts suppressed so far (each is also counted in a summary). */
  get suppressed(): number {
    return this.suppressedCount;
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.keys.size;
  }

  /** Offers one alert. Returns what to send now: the alert, summaries of closed windows, or nothing. */
  offer(alert: Alert, now: number): Alert[] {
    const out = this.tick(now);
    const key = noiseKey(alert);
    let w = this.keys.get(key);
    if (w === undefined && this.keys.size < this.opts.maxKeys) {
      w = { start: now, passed: 0, suppressed: 0, firstSuppressed: 0 };
      this.keys.set(key, w);
    }
    if (w !== undefined) {
      if (w.passed >= this.opts.perKey) {
        if (w.suppressed === 0) w.firstSuppressed = now;
        w.suppressed += 1;
        w.last = alert;
        this.suppressedCount += 1;
        return out;
      }
    }
    const g = this.global;
    if (g.passed >= this.opts.globalLimit) {
      if (g.suppressed === 0) g.firstSuppressed = now;
      g.suppressed += 1;
      g.last = alert;
      this.suppressedCount += 1;
      return out;
    }
    g.passed += 1;
    if (w !== undefined) w.passed += 1;
    out.push(alert);
    return out;
  }

  /** Closes the windows that ended by `now`; returns their summaries, oldest window first. */
  tick(now: number): Alert[] {
    const out: Alert[] = [];
    for (const [key, w] of this.keys) {
      if (now - w.start < this.opts.windowMs) continue;
      this.keys.delete(key);
      this.summarize(w, now, out);
    }
    if (now - this.global.start >= this.opts.globalWindowMs) this.closeGlobal(now, out);
    return out;
  }

  /** Closes every window now (at shutdown), so no suppressed count is lost. */
  flush(now: number): Alert[] {
    const out: Alert[] = [];
    for (const w of this.keys.values()) this.summarize(w, now, out);
    this.keys.clear();
    this.closeGlobal(now, out);
    return out;
  }

  /** The summary of a key's window that suppressed alerts, into `out`. */
  private summarize(w: Window, now: number, out: Alert[]): void {
    if (w.suppressed > 0 && w.last) {
      out.push(summaryAlert(w.last, w.suppressed, w.firstSuppressed, now, this.opts.windowMs));
    }
  }

  /** Ends the global window: its overflow summary (if it suppressed any) into `out`, and a new window. */
  private closeGlobal(now: number, out: Alert[]): void {
    const g = this.global;
    if (g.suppressed > 0 && g.last) {
      out.push(overflowSummary(g.last, g.suppressed, g.firstSuppressed, now, this.opts.globalWindowMs));
    }
    this.global = { start: now, passed: 0, suppressed: 0, firstSuppressed: 0 };
  }
}
