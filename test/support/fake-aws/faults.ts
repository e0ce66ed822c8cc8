/**
 * Fault injection for the fake AWS server. Rules are checked in order before a call is served; the
 * first that fires decides the error. Percent-based rules use a seeded PRNG, so runs are repeatable.
 */
import { prng } from './generate.js';

export interface FaultScope {
  service?: string;
  action?: string;
  accountId?: string;
  region?: string;
  /** The resource the call names (EC2 InstanceId or LaunchTemplateId), when the rule is that narrow. */
  resourceId?: string;
  /** Any other condition on the call, e.g. on its parameters. */
  match?: (call: CallSubject) => boolean;
}

/** An answer that is not an AWS protocol answer at all (a proxy's HTML page, a truncated body). */
export interface RawResponse {
  status: number;
  contentType: string;
  body: string;
}

/**
 * What a fault does to a call: answer an AWS error; `cut`: close the connection without an answer,
 * `before` the call acts or `after` it acted (the change is made, the client never hears of it: what a
 * proxy cutting connections does); `raw`: answer `response` as it is.
 */
export type FaultDecision =
  | { kind: 'error'; error: InjectedError }
  | { kind: 'cut'; when: 'before' | 'after' }
  | { kind: 'raw'; response: RawResponse };

export interface InjectedError {
  /** The AWS error code, e.g. RequestLimitExceeded. Protocol handlers pick the realistic default when omitted. */
  code: string;
  status: number;
  message: string;
}

interface Rule extends FaultScope {
  kind: 'throttle' | 'error' | 'cut' | 'raw';
  when?: 'before' | 'after';
  response?: RawResponse;
  /** Fire on the next `remaining` matching calls (undefined: unlimited). */
  remaining?: number;
  /** Fire on this share (0..100) of matching calls. */
  percent?: number;
  error?: InjectedError;
}

export interface CallSubject {
  service: string;
  action: string;
  accountId: string;
  region: string;
  accessKeyId: string;
  resourceId?: string | undefined;
  /** The query-protocol parameters (EC2, Auto Scaling, STS, IAM). */
  params?: URLSearchParams | undefined;
}

/** The throttling error each protocol answers, like the real services. */
export function throttleErrorFor(service: string): InjectedError {
  switch (service) {
    case 'ec2':
      return { code: 'RequestLimitExceeded', status: 503, message: 'Request limit exceeded.' };
    case 'organizations':
      return { code: 'TooManyRequestsException', status: 400, message: 'Rate exceeded' };
    case 'cloudwatch':
      return { code: 'Throttling', status: 400, message: 'Rate exceeded' };
    default:
      return { code: 'Throttling', status: 400, message: 'Rate exceeded' };
  }
}

/** The error an expired session gets from each protocol. */
export function expiredErrorFor(service: string): InjectedError {
  if (service === 'ec2') return { code: 'RequestExpired', status: 400, message: 'Request has expired.' };
  if (service === 'organizations')
    return {
      code: 'ExpiredTokenException',
      status: 400,
      message: 'The security token included in the request is expired',
    };
  return {
    code: 'ExpiredToken',
    status: 400,
    message: 'The security token included in the request is expired',
  };
}

export class Faults {
  private rules: Rule[] = [];
  private readonly disabledRegions = new Map<string, 'OptInRequired' | 'AuthFailure'>();
  private readonly expiredAccounts = new Set<string>();
  private readonly expiredKeys = new Set<string>();
  private readonly deniedAssume = new Set<string>();
  private rand: () => number;
  /** How many calls were answered by an injected fault, per error code. */
  readonly fired: Record<string, number> = {};

  constructor(seed = 42) {
    this.rand = prng(seed);
  }

  /**
   * Throttle matching calls: `next: K` throttles the next K of them, `percent: P` throttles P% of them
   * (both: the next K calls, each with probability P). EC2 answers 503 RequestLimitExceeded.
   */
  throttle(opts: FaultScope & { percent?: number; next?: number } = {}): this {
    this.rules.push({ ...opts, kind: 'throttle', remaining: opts.next, percent: opts.percent });
    return this;
  }

  /** Any error for matching calls, e.g. { action: 'DescribeLaunchConfigurations', code: 'AccessDenied', status: 403 }. */
  fail(
    opts: FaultScope & { code: string; status?: number; message?: string; next?: number; percent?: number },
  ): this {
    this.rules.push({
      ...opts,
      kind: 'error',
      remaining: opts.next,
      percent: opts.percent,
      error: {
        code: opts.code,
        status: opts.status ?? 400,
        message: opts.message ?? `Injected ${opts.code}`,
      },
    });
    return this;
  }

  /**
   * The caller lacks the IAM permission for matching calls: EC2 answers 403 UnauthorizedOperation, to
   * DryRun calls too (EC2 API reference, DryRun: "If you have the required permissions, the error
   * response is DryRunOperation. Otherwise, it is UnauthorizedOperation.").
   */
  deny(opts: FaultScope & { next?: number } = {}): this {
    return this.fail({
      ...opts,
      code: 'UnauthorizedOperation',
      status: 403,
      message:
        'You are not authorized to perform this operation. User: arn:aws:iam::000000000000:user/fake is not authorized to perform this action. Encoded authorization failure message: FAKE',
    });
  }

  /** Closes the connection of matching calls without an answer, before or after the call acts. */
  cut(opts: FaultScope & { when: 'before' | 'after'; next?: number; percent?: number }): this {
    this.rules.push({ ...opts, kind: 'cut', remaining: opts.next, percent: opts.percent });
    return this;
  }

  /** Answers matching calls with `response` as it is (an HTML error page, a body that is not XML). */
  raw(opts: FaultScope & RawResponse & { next?: number }): this {
    const { status, contentType, body, ...scope } = opts;
    this.rules.push({
      ...scope,
      kind: 'raw',
      remaining: opts.next,
      response: { status, contentType, body },
    });
    return this;
  }

  /** Every call in this account and region fails, as in a region that is not opted in. */
  disableRegion(
    accountId: string,
    region: string,
    code: 'OptInRequired' | 'AuthFailure' = 'OptInRequired',
  ): this {
    this.disabledRegions.set(`${accountId}/${region}`, code);
    return this;
  }

  isRegionDisabled(accountId: string, region: string): boolean {
    return this.disabledRegions.has(`${accountId}/${region}`);
  }

  /** Every call made with this account's credentials (or this access key) fails as expired. */
  expireCredentials(target: { accountId?: string; accessKeyId?: string }): this {
    if (target.accountId) this.expiredAccounts.add(target.accountId);
    if (target.accessKeyId) this.expiredKeys.add(target.accessKeyId);
    return this;
  }

  /** AssumeRole into this account is refused with AccessDenied. */
  denyAssumeRole(accountId: string): this {
    this.deniedAssume.add(accountId);
    return this;
  }

  isAssumeDenied(accountId: string): boolean {
    return this.deniedAssume.has(accountId);
  }

  reset(): this {
    this.rules = [];
    this.disabledRegions.clear();
    this.expiredAccounts.clear();
    this.expiredKeys.clear();
    this.deniedAssume.clear();
    return this;
  }

  /** Decides whether this call fails; called once per request by the server. */
  check(call: CallSubject): FaultDecision | undefined {
    if (this.expiredKeys.has(call.accessKeyId) || this.expiredAccounts.has(call.accountId)) {
      return { kind: 'error', error: this.note(expiredErrorFor(call.service)) };
    }
    const disabled = this.disabledRegions.get(`${call.accountId}/${call.region}`);
    if (disabled && call.service !== 'sts' && call.service !== 'organizations' && call.service !== 'iam') {
      return {
        kind: 'error',
        error: this.note(
          disabled === 'OptInRequired'
            ? {
                code: 'OptInRequired',
                status: 401,
                message:
                  'You are not subscribed to this service. Please go to http://aws.amazon.com to subscribe.',
              }
            : {
                code: 'AuthFailure',
                status: 401,
                message: 'AWS was not able to validate the provided access credentials',
              },
        ),
      };
    }
    for (const rule of this.rules) {
      if (rule.service !== undefined && rule.service !== call.service) continue;
      if (rule.action !== undefined && rule.action !== call.action) continue;
      if (rule.accountId !== undefined && rule.accountId !== call.accountId) continue;
      if (rule.region !== undefined && rule.region !== call.region) continue;
      if (rule.resourceId !== undefined && rule.resourceId !== call.resourceId) continue;
      if (rule.match !== undefined && !rule.match(call)) continue;
      if (rule.remaining !== undefined && rule.remaining <= 0) continue;
      if (rule.percent !== undefined && this.rand() * 100 >= rule.percent) continue;
      if (rule.remaining !== undefined) rule.remaining -= 1;
      if (rule.kind === 'cut') {
        this.fired[`cut-${rule.when}`] = (this.fired[`cut-${rule.when}`] ?? 0) + 1;
        return { kind: 'cut', when: rule.when ?? 'before' };
      }
      if (rule.kind === 'raw') {
        this.fired['raw'] = (this.fired['raw'] ?? 0) + 1;
        return { kind: 'raw', response: rule.response as RawResponse };
      }
      return {
        kind: 'error',
        error: this.note(
          rule.kind === 'throttle' ? throttleErrorFor(call.service) : (rule.error as InjectedError),
        ),
      };
    }
    return undefined;
  }

  private note(e: InjectedError): InjectedError {
    this.fired[e.code] = (this.fired[e.code] ?? 0) + 1;
    return e;
  }
}
