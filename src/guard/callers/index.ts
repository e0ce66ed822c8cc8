export { type RenderOptions, renderCallers } from './render.js';
export {
  type EventSource,
  type JsonlOptions,
  type JsonlStats,
  parseEvent,
  readEventsJsonl,
} from './source.js';
export {
  CallerAggregator,
  type CallerSummary,
  identityKey,
  OVERFLOW_KEY,
  type SummarizeOptions,
  summarizeCallers,
  v1Callers,
} from './summarize.js';
