import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { type ClassifiedRequest, classifyRequest } from '../../imds/classify.js';
import { imdsRefusal, rawImdsAnswer } from '../../imds/errors.js';
import { buildEvent, emitEvent } from '../events/build.js';
import type { GuardEvent } from '../events/types.js';
import { protocolDeny } from '../policy/mode.js';
import type { Decision } from '../policy/types.js';
import type { ProxyContext } from './context.js';
import { NO_ANSWER } from './handler.js';

/**
 * Refusals on the socket, outside the request handler: what the HTTP parser refused (garbage,
 * oversized heads, slowloris) and CONNECT or Upgrade requests (node would drop them silently). Each
 * is answered like the metadata service would and recorded as an event.
 */

/** The event of a request refused on its socket. */
function socketRefusal(
  ctx: ProxyContext,
  socket: Socket,
  d: Decision,
  request: { method: string; path?: string; cls?: ClassifiedRequest },
): GuardEvent {
  const state = ctx.state();
  const start = ctx.now();
  return buildEvent({
    id: ctx.ids.next(start),
    startMs: start,
    host: ctx.hostname,
    mode: state.config.mode,
    flavor: state.config.flavor,
    ...request,
    client: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
    decision: d,
    action: 'refused',
    status: d.status,
    alert: true,
  });
}

/** Answers what the HTTP parser refused (malformed requests, absurd headers, slowloris), with an event. */
export function createClientErrorHandler(ctx: ProxyContext) {
  return function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const code = err.code ?? 'ERR';
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    const state = ctx.state();
    const limits = state.config.limits;
    let d = protocolDeny('malformed-request', `malformed HTTP request (${code})`, 400);
    if (code === 'HPE_HEADER_OVERFLOW') {
      d = protocolDeny('header-overflow', `request head larger than ${limits.maxHeaderBytes} bytes`, 431);
    } else if (
      code === 'ERR_HTTP_REQUEST_TIMEOUT' ||
      code === 'ERR_HTTP_HEADERS_TIMEOUT' ||
      code === 'ETIMEDOUT'
    ) {
      d = protocolDeny(
        'request-timeout',
        `request not received within ${limits.headersTimeoutMs} ms (slowloris?)`,
        408,
      );
    } else if (code === 'HPE_UNEXPECTED_CONTENT_LENGTH' || code === 'HPE_INVALID_TRANSFER_ENCODING') {
      d = protocolDeny('smuggling', `ambiguous message framing (${code})`, 400);
    }
    // An answer still owed to an earlier request on this connection goes first; nothing after it
    // is served (the parser has given up on this connection).
    const handled = ctx.connections.afterCurrent(socket, () => {
      let written = false;
      if (socket.writable) {
        try {
          socket.end(rawImdsAnswer(imdsRefusal(state.config.flavor, d.status)));
          written = true;
        } catch {
          socket.destroy();
        }
      }
      socket.destroySoon?.();
      const event = socketRefusal(ctx, socket, d, { method: '-', path: '-' });
      if (!written) event.status = NO_ANSWER;
      emitEvent(ctx.recorders, event, ctx.log);
    });
    if (!handled) socket.destroy();
  };
}

/** CONNECT and Upgrade requests: refused with an event (node would otherwise drop them silently). */
export function createSpecialHandler(ctx: ProxyContext, kind: 'connect' | 'upgrade') {
  return function onSpecial(req: IncomingMessage, socket: Socket): void {
    const state = ctx.state();
    const d =
      kind === 'connect'
        ? protocolDeny('connect', 'CONNECT requests are refused', 405)
        : protocolDeny('upgrade', 'protocol upgrades are refused', 400);
    const cls = classifyRequest(
      {
        method: req.method ?? '',
        target: req.url ?? '',
        httpVersion: req.httpVersion,
        rawHeaders: req.rawHeaders,
      },
      state.config.flavor,
      state.config.authHeader,
    );
    // recorded as sent: a CONNECT or an upgrade is not a metadata request of any version
    const event = socketRefusal(ctx, socket, d, {
      method: req.method ?? '-',
      cls: { ...cls, version: 'unknown' },
    });
    socket.on('error', () => {});
    socket.end(rawImdsAnswer(imdsRefusal(state.config.flavor, d.status)));
    emitEvent(ctx.recorders, event, ctx.log);
  };
}
