export {
  type EventSource,
  type JsonlOptions,
  type JsonlStats,
  parseEvent,
  readEventsJsonl,
} from '../events/source.js';
export { type RenderOptions, renderCallers } from './render.js';
export {
  CallerAggregator,
  type CallerSummary,
  identityKey,
  OVERFLOW_KEY,
  podLabel,
  type SummarizeOptions,
  summarizeCallers,
  v1Callers,
} from './summarize.js';
