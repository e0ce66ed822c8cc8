import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small CloudWatch Logs endpoint on loopback speaking the service's JSON protocol (awsJson1_1:
 * POST /, X-Amz-Target: Logs_20140328.<Operation>, errors as {"__type": ...}). Enough for
 * CreateLogGroup, CreateLogStream, PutLogEvents and DescribeLogStreams, with a switch to fail.
 */
export interface FakeCwLogs {
  endpoint: string;
  /** group -> stream -> events in arrival order */
  groups: Map<string, Map<string, Array<{ timestamp: number; message: string }>>>;
  /** Every operation received, in order. */
  calls: string[];
  /** While set, every call answers this HTTP status with a ServiceUnavailableException. */
  failWith: number | undefined;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'x-amzn-requestid': `req-${Math.random().toString(16).slice(2)}`,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function error(res: ServerResponse, type: string, message: string, status = 400): void {
  send(res, status, { __type: type, message });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeCwLogs(): Promise<FakeCwLogs> {
  const fake: FakeCwLogs = {
    endpoint: '',
    groups: new Map(),
    calls: [],
    failWith: undefined,
    close: async () => {},
  };
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    const target = String(req.headers['x-amz-target'] ?? '');
    const op = target.startsWith('Logs_20140328.') ? target.slice('Logs_20140328.'.length) : '';
    fake.calls.push(op || target);
    if (req.method !== 'POST' || !op)
      return error(res, 'UnknownOperationException', `unknown target ${target}`);
    if (!String(req.headers['authorization'] ?? '').startsWith('AWS4-HMAC-SHA256')) {
      return error(res, 'MissingAuthenticationTokenException', 'request is not signed', 403);
    }
    if (fake.failWith !== undefined)
      return error(res, 'ServiceUnavailableException', 'down for a test', fake.failWith);
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body || '{}') as Record<string, unknown>;
    } catch {
      return error(res, 'SerializationException', 'bad JSON');
    }
    const group = String(input['logGroupName'] ?? '');
    const stream = String(input['logStreamName'] ?? '');
    switch (op) {
      case 'CreateLogGroup':
        if (fake.groups.has(group))
          return error(res, 'ResourceAlreadyExistsException', 'The specified log group already exists');
        fake.groups.set(group, new Map());
        return send(res, 200, {});
      case 'CreateLogStream': {
        const g = fake.groups.get(group);
        if (!g) return error(res, 'ResourceNotFoundException', 'The specified log group does not exist.');
        if (g.has(stream))
          return error(res, 'ResourceAlreadyExistsException', 'The specified log stream already exists');
        g.set(stream, []);
        return send(res, 200, {});
      }
      case 'DescribeLogStreams': {
        const g = fake.groups.get(group);
        if (!g) return error(res, 'ResourceNotFoundException', 'The specified log group does not exist.');
        return send(res, 200, { logStreams: [...g.keys()].map((logStreamName) => ({ logStreamName })) });
      }
      case 'PutLogEvents': {
        const s = fake.groups.get(group)?.get(stream);
        if (!s) return error(res, 'ResourceNotFoundException', 'The specified log stream does not exist.');
        const events = (input['logEvents'] ?? []) as Array<{ timestamp: number; message: string }>;
        for (let i = 1; i < events.length; i++) {
          if (
            (events[i] as { timestamp: number }).timestamp <
            (events[i - 1] as { timestamp: number }).timestamp
          ) {
            return error(
              res,
              'InvalidParameterException',
              'Log events in a single PutLogEvents request must be in chronological order.',
            );
          }
        }
        s.push(...events);
        return send(res, 200, { nextSequenceToken: String(s.length) });
      }
      default:
        return error(res, 'UnknownOperationException', `unsupported ${op}`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  fake.endpoint = `http://127.0.0.1:${port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return fake;
}
