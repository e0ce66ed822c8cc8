import type { GuardConfig } from '../../config/schema.js';
import type { EventIds } from '../events/build.js';
import type { EventRecorder } from '../events/types.js';
import type { Policy } from '../policy/types.js';
import type { TokenGuard } from '../tokens/guard.js';
import type { LazyTrap } from '../trap/lazy.js';
import type { CallerLookup } from './caller-lookup.js';
import type { Connections } from './connections.js';
import type { Forwarder } from './forward.js';
import type { LocalAddresses } from './local-addresses.js';

/** What a request sees of the guard's current configuration; swapped atomically on reload. */
export interface GuardState {
  readonly config: GuardConfig;
  readonly policy: Policy;
  /** The trap, in trap mode only. */
  readonly trap: LazyTrap | undefined;
  /** Whether attribution runs (a resolver exists and guard.attribution.enabled). */
  readonly attribution: boolean;
}

/** Everything of one guard that its request path uses. Nothing here is shared between guards. */
export interface ProxyContext {
  state(): GuardState;
  callers: CallerLookup;
  /** Client connections: pipelined requests served one at a time, in order. */
  connections: Connections;
  /** This host's addresses: a client at one of them shares the guard's network namespace. */
  localAddresses: LocalAddresses;
  forwarder: Forwarder;
  recorders: readonly EventRecorder[];
  /** The token ledger: what a request's token is, what an answer issued. */
  tokens: TokenGuard;
  ids: EventIds;
  hostname: string;
  now: () => number;
  log: (message: string) => void;
  counters: { requests: number; inFlight: number; pendingEvents: number };
}
