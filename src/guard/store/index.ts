export { MemoryEventStore } from './memory.js';
export {
  DEFAULT_QUERY_LIMIT,
  DEFAULT_RETENTION,
  type EventFilter,
  type EventStore,
  MAX_QUERY_LIMIT,
  matches,
  type RetentionOptions,
} from './port.js';
export { readEventsFromStore } from './read.js';
export { DEFAULT_STORE_RECORDER, StoreRecorder, type StoreRecorderOptions } from './recorder.js';
export { SqliteEventStore, type SqliteStoreOptions } from './sqlite.js';
