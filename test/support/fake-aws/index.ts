/**
 * fake-aws: a local AWS endpoint the real AWS SDK v3 talks to (client option `endpoint`, CLI
 * `--endpoint-url`). One HTTP server on 127.0.0.1:0 serves every service, routed by protocol:
 *
 *   EC2          query protocol, form body Action=...&Version=2016-11-15, XML in the EC2 namespace,
 *                errors <Response><Errors><Error><Code>..   (ec2.ts)
 *   Auto Scaling awsquery XML, Version=2011-01-01            (autoscaling.ts)
 *   STS          awsquery XML, Version=2011-06-15             (sts.ts)
 *   IAM          awsquery XML, Version=2010-05-08             (iam.ts: GetInstanceProfile)
 *   Organizations AWS JSON 1.1, X-Amz-Target AWSOrganizationsV20161128.*  (organizations.ts)
 *   CloudWatch   AWS JSON 1.0, X-Amz-Target GraniteServiceVersion20100801.* (cloudwatch.ts: the usage metrics)
 *   CloudWatch Logs AWS JSON 1.1, X-Amz-Target Logs_20140328.* (logs.ts: the guard's sink, Logs Insights)
 *
 * The account a request acts in comes from the access key id in the SigV4 Authorization header:
 * AssumeRole hands out ASIA<12-digit account><4 hex>; any other key is the caller's own account
 * (fleet.managementAccountId, or `accessKeys` to map more). The region is the credential scope's.
 * Signatures are not verified. Sessions expire DurationSeconds after AssumeRole (ExpiredToken/RequestExpired).
 * Time is `clock()` (default Date.now): tests move it instead of sleeping.
 *
 * Usage:
 *   const aws = await startFakeAws({ generate: { accounts: 3, regions: ['us-east-1', 'eu-west-1'], instancesPerRegion: 500 } });
 *   new EC2Client({ endpoint: aws.url, region: 'us-east-1', credentials: FAKE_CREDENTIALS });
 *   aws.faults.throttle({ action: 'DescribeInstances', next: 3 });
 *   aws.calls.count({ action: 'DescribeInstances', region: 'us-east-1' });
 *   await aws.close();
 *
 * See README.md beside this file.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AUTOSCALING_NS, handleAutoScaling, queryErrorBody } from './autoscaling.js';
import { CallLog } from './calls.js';
import { CLOUDWATCH_TARGET, handleCloudWatch } from './cloudwatch.js';
import { FakeAwsError, type FakeSession, type HandlerContext, type HandlerResult } from './context.js';
import { ec2ErrorBody, handleEc2 } from './ec2.js';
import { expiredErrorFor, Faults } from './faults.js';
import { type GenerateFleetOptions, generateFleet } from './generate.js';
import { handleIam, IAM_NS } from './iam.js';
import { RateLimits } from './limits.js';
import { FakeLogs, type FakeLogsOptions, LOGS_TARGET } from './logs.js';
import type { FakeFleet } from './model.js';
import { handleOrganizations, ORGANIZATIONS_TARGET } from './organizations.js';
import { handleSts, STS_NS } from './sts.js';

export type { CallFilter, CallRecord } from './calls.js';
export { CallLog } from './calls.js';
export { FakeAwsError } from './context.js';
export { Faults } from './faults.js';
export { type GenerateFleetOptions, generateFleet, prng } from './generate.js';
export { EC2_DEFAULT_LIMITS, RateLimits } from './limits.js';
export { FakeLogs, type FakeLogsOptions, LOGS_MAX_LIMIT } from './logs.js';
export * from './model.js';

/** Credentials for tests: any values work; this key id maps to the fleet's management account. */
export const FAKE_CREDENTIALS = {
  accessKeyId: 'AKIAFAKEFAKEFAKE0001',
  secretAccessKey: 'fake-secret-access-key-not-a-secret',
} as const;

/** The environment that gives the CLI (or the SDK) the fake credentials and a region. */
export function fakeCredentialsEnv(region = 'us-east-1'): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: FAKE_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: FAKE_CREDENTIALS.secretAccessKey,
    AWS_REGION: region,
  };
}

export interface FakeAwsOptions {
  /** The fleet to serve (mutable). Default: generateFleet(generate). */
  fleet?: FakeFleet;
  generate?: GenerateFleetOptions;
  /** Extra access key id -> account id mappings for non-assumed credentials. */
  accessKeys?: Record<string, string>;
  /**
   * The server's clock, epoch ms (default Date.now). Session expiry, metadata `pending`, CloudWatch
   * retention, publication and period rules all read it, so a test controls time by moving it.
   */
  clock?: () => number;
  /** How long a ModifyInstanceMetadataOptions change reads `pending`, ms (default 0: applied at the next read). */
  pendingForMs?: number;
  /** How long after its time a CloudWatch sample can be read, ms (default 0). */
  publishDelayMs?: number;
  /** Seed for percent-based fault injection (default 42). */
  faultSeed?: number;
  /** Request bodies larger than this are refused with 413, bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Artificial latency added to every response, ms (default 0). */
  latencyMs?: number;
  /** CloudWatch Logs: the concurrent Logs Insights query limit and how long queries run (logs.ts). */
  logs?: FakeLogsOptions;
}

export interface FakeAws {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  fleet: FakeFleet;
  calls: CallLog;
  faults: Faults;
  limits: RateLimits;
  /** AssumeRole sessions issued, by access key id. */
  sessions: Map<string, FakeSession>;
  /** CloudWatch Logs: log groups per account and region, and Logs Insights queries. */
  logs: FakeLogs;
  /** The server's clock (options.clock). */
  now(): number;
  close(): Promise<void>;
}

const SCOPE_RE = /Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/;
const VERSION_SERVICE: Record<string, string> = {
  '2016-11-15': 'ec2',
  '2011-01-01': 'autoscaling',
  '2011-06-15': 'sts',
  '2010-05-08': 'iam',
};

function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () => resolve(size > limit ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startFakeAws(options: FakeAwsOptions = {}): Promise<FakeAws> {
  const fleet = options.fleet ?? generateFleet(options.generate);
  const calls = new CallLog();
  const faults = new Faults(options.faultSeed ?? 42);
  const clock = options.clock ?? (() => Date.now());
  const limits = new RateLimits(clock);
  const sessions = new Map<string, FakeSession>();
  const pendingForMs = options.pendingForMs ?? 0;
  const publishDelayMs = options.publishDelayMs ?? 0;
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const latency = options.latencyMs ?? 0;
  const logs = new FakeLogs(options.logs);

  function accountFor(accessKeyId: string): string {
    const m = /^ASIA(\d{12})/.exec(accessKeyId);
    if (m) return m[1] as string;
    return options.accessKeys?.[accessKeyId] ?? fleet.managementAccountId;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const body = await readBody(req, maxBody);
    if (body === null) {
      res.writeHead(413, { 'content-type': 'text/plain' }).end('request body too large');
      return;
    }
    const auth = String(req.headers['authorization'] ?? '');
    const scope = SCOPE_RE.exec(auth);
    const target = req.headers['x-amz-target'];
    let service: string;
    let action: string;
    let params = new URLSearchParams();
    let json: Record<string, unknown> = {};
    if (typeof target === 'string' && target.includes('.')) {
      const [prefix, op] = target.split('.', 2) as [string, string];
      service =
        prefix === ORGANIZATIONS_TARGET
          ? 'organizations'
          : prefix === CLOUDWATCH_TARGET
            ? 'cloudwatch'
            : prefix === LOGS_TARGET
              ? 'logs'
              : prefix;
      action = op;
      try {
        json = body.length > 0 ? (JSON.parse(body) as Record<string, unknown>) : {};
      } catch {
        json = {};
      }
    } else {
      params = new URLSearchParams(body);
      action = params.get('Action') ?? '';
      service = VERSION_SERVICE[params.get('Version') ?? ''] ?? scope?.[4] ?? 'unknown';
    }
    const accessKeyId = scope?.[1] ?? '';
    const region = scope?.[3] ?? 'us-east-1';
    const accountId = accountFor(accessKeyId);
    const ctx: HandlerContext = {
      fleet,
      faults,
      action,
      accountId,
      region,
      accessKeyId,
      requestId,
      now: clock(),
      params,
      json,
      sessions,
      options: { pendingForMs, publishDelayMs },
    };
    let result: HandlerResult | undefined;
    let error: FakeAwsError | undefined;
    let cut: 'before' | 'after' | undefined;
    try {
      if (!scope)
        throw new FakeAwsError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403);
      const session = accessKeyId.startsWith('ASIA') ? sessions.get(accessKeyId) : undefined;
      if (session && session.expiresAt <= ctx.now) {
        const e = expiredErrorFor(service);
        throw new FakeAwsError(e.code, e.message, e.status);
      }
      const resourceId = params.get('InstanceId') ?? params.get('LaunchTemplateId') ?? undefined;
      const fault = faults.check({ service, action, accountId, region, accessKeyId, resourceId, params });
      if (fault?.kind === 'error')
        throw new FakeAwsError(fault.error.code, fault.error.message, fault.error.status);
      if (fault?.kind === 'raw') {
        calls.record({ service, action, accountId, region, status: fault.response.status, at: ctx.now });
        const body = fault.response.body;
        res
          .writeHead(fault.response.status, {
            'content-type': fault.response.contentType,
            'content-length': String(Buffer.byteLength(body)),
          })
          .end(body);
        return;
      }
      cut = fault?.kind === 'cut' ? fault.when : undefined;
      if (cut === 'before') {
        calls.record({ service, action, accountId, region, status: 0, errorCode: 'cut-before', at: ctx.now });
        req.socket.destroy();
        return;
      }
      if (!limits.take(accountId, region, action)) {
        throw new FakeAwsError(
          service === 'ec2' ? 'RequestLimitExceeded' : 'Throttling',
          'Request limit exceeded.',
          service === 'ec2' ? 503 : 400,
        );
      }
      if (service === 'ec2') result = handleEc2(ctx);
      else if (service === 'autoscaling') result = handleAutoScaling(ctx);
      else if (service === 'sts') result = handleSts(ctx);
      else if (service === 'iam') result = handleIam(ctx);
      else if (service === 'organizations') result = handleOrganizations(ctx);
      else if (service === 'cloudwatch') result = handleCloudWatch(ctx);
      else if (service === 'logs') result = logs.handle(ctx);
      else throw new FakeAwsError('UnknownService', `fake-aws does not speak ${service}`, 400);
    } catch (err) {
      error =
        err instanceof FakeAwsError
          ? err
          : new FakeAwsError('InternalError', `fake-aws bug: ${String(err)}`, 500);
    }
    const status = error ? error.status : (result?.status ?? 200);
    if (cut === 'after') {
      // The call acted (or failed); the client never hears of it.
      calls.record({ service, action, accountId, region, status: 0, errorCode: 'cut-after', at: ctx.now });
      req.socket.destroy();
      return;
    }
    calls.record({ service, action, accountId, region, status, errorCode: error?.code, at: ctx.now });
    if (latency > 0) await new Promise((r) => setTimeout(r, latency));
    const headers: Record<string, string> = { 'x-amzn-requestid': requestId };
    let out: string;
    if (error) {
      if (service === 'organizations' || service === 'cloudwatch' || service === 'logs') {
        headers['content-type'] =
          service === 'cloudwatch' ? 'application/x-amz-json-1.0' : 'application/x-amz-json-1.1';
        headers['x-amzn-errortype'] = error.code;
        if (service === 'cloudwatch') headers['x-amzn-query-error'] = `${error.code};Sender`;
        out = JSON.stringify({ __type: error.code, message: error.message });
      } else if (service === 'ec2') {
        headers['content-type'] = 'text/xml;charset=UTF-8';
        out = ec2ErrorBody(error.code, error.message, requestId);
      } else {
        headers['content-type'] = 'text/xml';
        out = queryErrorBody(
          service === 'sts' ? STS_NS : service === 'iam' ? IAM_NS : AUTOSCALING_NS,
          error.code,
          error.message,
          requestId,
          status,
        );
      }
    } else {
      headers['content-type'] = (result as HandlerResult).contentType;
      out = (result as HandlerResult).body;
    }
    headers['content-length'] = String(Buffer.byteLength(out));
    res.writeHead(status, headers).end(out);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`fake-aws: ${String(err)}`);
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    fleet,
    calls,
    faults,
    limits,
    sessions,
    logs,
    now: clock,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
