/**
 * Endpoints that do not support a call: an EC2-compatible endpoint without GetInstanceMetadataDefaults,
 * a proxy answering an HTML error page, a partition or Region without the action. Retrying cannot help,
 * and the SDK's own message ("XML parse error: mismatched tags") explains nothing. So the first such
 * answer is classified once, per endpoint and action:
 *
 *   - an AWS error code that means "no such action": InvalidAction (EC2 and the query services),
 *     UnknownOperationException (JSON services), NotImplemented;
 *   - HTTP 501;
 *   - an answer the protocol cannot read (the SDK's deserialization error: XML or JSON parse errors);
 *   - a 500 whose body is an HTML page.
 *
 * The middleware sits under the SDK's retry middleware: it turns such an answer into an
 * EndpointUnsupportedError, which the retry strategy does not retry (a client error, no HTTP metadata),
 * and remembers it so later calls of that action to that endpoint fail at once, without a request.
 * wrapAwsError turns it into IMDSGUARD_E_AWS_UNSUPPORTED: "GetInstanceMetadataDefaults is not supported
 * by this endpoint (...)".
 */
import type { FinalizeHandlerArguments, HandlerExecutionContext } from '@smithy/types';
import type { MiddlewareClient } from './counter.js';

const UNSUPPORTED_CODES = new Set([
  'InvalidAction',
  'UnknownOperationException',
  'UnknownOperation',
  'NotImplemented',
]);

/** A call the endpoint does not support. Not retried (no HTTP metadata: the SDK sees a client error). */
export class EndpointUnsupportedError extends Error {
  readonly operation: string;
  readonly endpoint: string;
  readonly reason: string;
  constructor(operation: string, endpoint: string, reason: string) {
    super(`${operation} is not supported by this endpoint (${endpoint}): ${reason}`);
    this.name = 'EndpointUnsupported';
    this.operation = operation;
    this.endpoint = endpoint;
    this.reason = reason;
  }
}

interface SdkErrorShape {
  name?: unknown;
  message?: unknown;
  Code?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $response?: { statusCode?: unknown; headers?: Record<string, unknown> };
}

function headerOf(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers))
    if (k.toLowerCase() === name && typeof v === 'string') return v;
  return undefined;
}

/** PURE: why an SDK error says the endpoint does not support the call, or null when it does not say so. */
export function unsupportedReason(err: unknown): string | null {
  if (!err || typeof err !== 'object') return null;
  const e = err as SdkErrorShape;
  const name = typeof e.name === 'string' ? e.name : '';
  const code = typeof e.Code === 'string' ? e.Code : e.$metadata !== undefined ? name : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (UNSUPPORTED_CODES.has(code)) return `${code}: ${message.split('\n')[0]}`;
  const status =
    typeof e.$metadata?.httpStatusCode === 'number'
      ? e.$metadata.httpStatusCode
      : typeof e.$response?.statusCode === 'number'
        ? e.$response.statusCode
        : undefined;
  if (status === 501) return 'HTTP 501 Not Implemented';
  const type = headerOf(e.$response?.headers, 'content-type') ?? 'no content type';
  if (status !== undefined && status >= 500 && /html/i.test(type)) return `HTTP ${status} with an HTML page`;
  const unreadable =
    /Deserialization error/i.test(message) ||
    /XML parse error/i.test(message) ||
    (name === 'SyntaxError' && e.$response !== undefined);
  if (unreadable) return `HTTP ${status ?? '?'} (${type}) whose body is not an AWS answer`;
  return null;
}

/** The endpoint a request goes to, for messages and the cache: scheme://host[:port]. */
function endpointOf(request: unknown): string {
  const r = request as { protocol?: unknown; hostname?: unknown; port?: unknown } | null;
  if (!r || typeof r.hostname !== 'string') return 'unknown endpoint';
  const scheme = typeof r.protocol === 'string' ? r.protocol.replace(/:$/, '') : 'https';
  return `${scheme}://${r.hostname}${typeof r.port === 'number' ? `:${r.port}` : ''}`;
}

/** What a run learnt: endpoint|action -> reason. Bounded by the actions and endpoints a run uses. */
export type UnsupportedCache = Map<string, string>;

/** Adds the classifying middleware to a client (idempotent per client: a fixed name). */
export function attachUnsupportedGuard(client: MiddlewareClient, cache: UnsupportedCache): void {
  client.middlewareStack.add(
    (next: (args: FinalizeHandlerArguments<object>) => Promise<unknown>, context: HandlerExecutionContext) =>
      async (args: FinalizeHandlerArguments<object>) => {
        const operation = String(context.commandName ?? 'unknown').replace(/Command$/, '');
        const endpoint = endpointOf(args.request);
        const key = `${endpoint}|${operation}`;
        const known = cache.get(key);
        if (known !== undefined) throw new EndpointUnsupportedError(operation, endpoint, known);
        try {
          return await next(args);
        } catch (err) {
          const reason = unsupportedReason(err);
          if (reason === null) throw err;
          cache.set(key, reason);
          throw new EndpointUnsupportedError(operation, endpoint, reason);
        }
      },
    // Under the retry middleware (finalizeRequest, high): the classified error is not retried.
    { step: 'finalizeRequest', name: 'imdsguardUnsupported', priority: 'low', override: true },
  );
}
