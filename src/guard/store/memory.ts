import type { GuardEvent } from '../events/types.js';
import {
  compare,
  DEFAULT_RETENTION,
  type EventFilter,
  type EventStore,
  limitOf,
  matches,
  type RetentionOptions,
} from './port.js';

/** Events in memory, bounded by count (oldest dropped), for tests and for runs without a --db. */
export class MemoryEventStore implements EventStore {
  private events: GuardEvent[] = [];
  private readonly ids = new Set<string>();
  private readonly retention: RetentionOptions;
  private readonly maxEvents: number;

  constructor(opts: { retention?: RetentionOptions; maxEvents?: number } = {}) {
    this.retention = opts.retention ?? DEFAULT_RETENTION;
    this.maxEvents = opts.maxEvents ?? 100_000;
  }

  async insert(events: readonly GuardEvent[]): Promise<void> {
    for (const e of events) {
      if (this.ids.has(e.id)) continue;
      this.ids.add(e.id);
      this.events.push(structuredClone(e));
    }
    this.events.sort(compare);
    if (this.events.length > this.maxEvents) {
      for (const e of this.events.splice(0, this.events.length - this.maxEvents)) this.ids.delete(e.id);
    }
  }

  async query(filter: EventFilter): Promise<GuardEvent[]> {
    const hits = this.events.filter((e) => matches(e, filter));
    if ((filter.order ?? 'desc') === 'desc') hits.reverse();
    return hits.slice(0, limitOf(filter)).map((e) => structuredClone(e));
  }

  async prune(nowMs: number): Promise<number> {
    const before = this.events.length;
    const cutoff = nowMs - this.retention.maxAgeMs;
    this.events = this.events.filter((e) => {
      const keep = Date.parse(e.time) >= cutoff;
      if (!keep) this.ids.delete(e.id);
      return keep;
    });
    return before - this.events.length;
  }

  async close(): Promise<void> {
    this.events = [];
    this.ids.clear();
  }
}
