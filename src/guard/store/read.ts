import type { GuardEvent } from '../events/types.js';
import type { EventFilter, EventStore } from './port.js';
import { SqliteEventStore } from './sqlite.js';

/**
 * Reads events from a store database, oldest first, page by page (bounded memory). For
 * `imdsguard callers --db FILE`. A path is opened read-only and closed at the end.
 */
export async function* readEventsFromStore(
  db: string | EventStore,
  filter: Omit<EventFilter, 'order' | 'after'> = {},
): AsyncIterable<GuardEvent> {
  const store = typeof db === 'string' ? new SqliteEventStore({ path: db, readonly: true }) : db;
  const page = 1000;
  let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
  let after: EventFilter['after'];
  try {
    while (remaining > 0) {
      const rows = await store.query({
        ...filter,
        ...(after ? { after } : {}),
        order: 'asc',
        limit: Math.min(page, remaining),
      });
      for (const e of rows) yield e;
      remaining -= rows.length;
      const last = rows[rows.length - 1];
      if (!last || rows.length < page) break;
      after = { timeMs: Date.parse(last.time), id: last.id };
    }
  } finally {
    if (typeof db === 'string') await store.close();
  }
}
