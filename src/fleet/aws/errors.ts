/**
 * Wraps AWS SDK errors into ImdsguardError with context (account, region, call, instance), a stable
 * code and a hint. Pure: it only looks at the error object.
 */
import { type ErrorCode, errorMessage, ImdsguardError, isImdsguardError } from '../../errors.js';
import { EndpointUnsupportedError } from './unsupported.js';

export interface AwsCallContext {
  /** e.g. 'ec2:DescribeInstances' */
  operation: string;
  accountId?: string | null;
  region?: string | null;
  instanceId?: string | null;
}

const AUTH_CODES = new Set([
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
]);
const REGION_CODES = new Set(['OptInRequired', 'AuthFailure', 'InvalidRegion']);
const ACCESS_CODES = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'UnauthorizedAccess',
  'Blocked',
]);
const THROTTLE_CODES = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
]);

/** AWS error codes that say the service failed while handling the call: it may have acted. */
const SERVER_FAULT_CODES = new Set([
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
  'Unavailable',
  'RequestTimeout',
  'RequestTimeoutException',
]);

export const AUTH_HINT =
  'refresh your SSO session (aws sso login) or your credentials, or choose another --profile';

/** The AWS error code of an SDK error (its name), or null for non-AWS errors. */
export function awsErrorCode(err: unknown): string | null {
  if (err && typeof err === 'object') {
    const e = err as { name?: unknown; Code?: unknown; $metadata?: unknown; code?: unknown };
    if (typeof e.Code === 'string') return e.Code;
    if (typeof e.name === 'string' && (e.$metadata !== undefined || AUTH_CODES.has(e.name))) return e.name;
  }
  return null;
}

export function isThrottleError(err: unknown): boolean {
  const code = awsErrorCode(err);
  return code !== null && THROTTLE_CODES.has(code);
}

/** The SDK error under an ImdsguardError (its cause), or the error itself. */
function sdkErrorOf(err: unknown): unknown {
  return isImdsguardError(err) && err.cause !== undefined ? err.cause : err;
}

/** The HTTP status AWS answered with, when there was an answer. */
export function httpStatusOf(err: unknown): number | undefined {
  const e = sdkErrorOf(err) as { $metadata?: { httpStatusCode?: unknown } } | null;
  const s = e?.$metadata?.httpStatusCode;
  return typeof s === 'number' ? s : undefined;
}

/**
 * True when AWS answered the call and refused it, so it did not act: an AWS error code with a 4xx
 * status, or throttling. Anything else (a connection cut or reset, a timeout, a 5xx InternalError, an
 * answer that could not be read, no answer at all) is ambiguous: the call may have acted, and only
 * reading the resource back tells.
 */
export function isDefiniteRefusal(err: unknown): boolean {
  const detail = isImdsguardError(err) ? err.details?.['awsCode'] : undefined;
  const code = typeof detail === 'string' ? detail : awsErrorCode(sdkErrorOf(err));
  if (code === null) return false;
  if (THROTTLE_CODES.has(code)) return true;
  if (SERVER_FAULT_CODES.has(code)) return false;
  const status = httpStatusOf(err);
  return status !== undefined && status < 500;
}

/** Where a failure happened, for messages: "account 123 us-east-1 ec2:DescribeInstances i-1". */
export function describeContext(ctx: AwsCallContext): string {
  return [
    ctx.accountId ? `account ${ctx.accountId}` : null,
    ctx.region ?? null,
    ctx.operation,
    ctx.instanceId ?? null,
  ]
    .filter((x): x is string => x !== null && x !== '')
    .join(' ');
}

/** What a scan report records about one failed call: the stable code, the AWS code, message and hint. */
export interface FailureFields {
  code: ErrorCode;
  awsCode: string | null;
  message: string;
  hint: string | null;
}

/** The FailureFields of any error (an ImdsguardError as it is, anything else as IMDSGUARD_E_AWS). */
export function failureFields(err: unknown): FailureFields {
  const e = isImdsguardError(err)
    ? err
    : new ImdsguardError('IMDSGUARD_E_AWS', err instanceof Error ? err.message : String(err), { cause: err });
  const awsCode = (e.details?.['awsCode'] as string | null | undefined) ?? awsErrorCode(e.cause);
  return { code: e.code as ErrorCode, awsCode: awsCode ?? null, message: e.message, hint: e.hint ?? null };
}

/** Turns any error from an AWS call into an ImdsguardError that keeps the cause. */
export function wrapAwsError(err: unknown, ctx: AwsCallContext): ImdsguardError {
  if (err instanceof ImdsguardError) return err;
  if (err instanceof EndpointUnsupportedError) {
    return new ImdsguardError('IMDSGUARD_E_AWS_UNSUPPORTED', `${describeContext(ctx)}: ${err.message}`, {
      cause: err,
      hint: `it is not retried; check --endpoint-url, the region, or whether this endpoint offers ${err.operation} at all`,
      details: {
        operation: ctx.operation,
        accountId: ctx.accountId ?? null,
        region: ctx.region ?? null,
        instanceId: ctx.instanceId ?? null,
        awsCode: null,
        endpoint: err.endpoint,
      },
    });
  }
  const awsCode = awsErrorCode(err);
  const where = describeContext(ctx);
  let code: ErrorCode = 'IMDSGUARD_E_AWS';
  let hint: string | undefined;
  if (awsCode !== null && AUTH_CODES.has(awsCode)) {
    code = 'IMDSGUARD_E_AWS_AUTH';
    hint = AUTH_HINT;
  } else if (ctx.operation === 'sts:AssumeRole') {
    code = 'IMDSGUARD_E_AWS_ASSUME_ROLE';
    hint = 'check that the role exists in the target account and that its trust policy allows the caller';
  } else if (awsCode !== null && REGION_CODES.has(awsCode)) {
    code = 'IMDSGUARD_E_AWS_REGION';
    hint = 'enable the region for this account, or leave it out of --regions';
  } else if (awsCode !== null && ACCESS_CODES.has(awsCode)) {
    code = 'IMDSGUARD_E_AWS_ACCESS';
    hint = `grant ${ctx.operation} to the caller or the assumed role (docs/fleet.md lists the permissions)`;
  } else if (awsCode !== null && THROTTLE_CODES.has(awsCode)) {
    code = 'IMDSGUARD_E_AWS_THROTTLED';
    hint = 'lower --concurrency or raise --max-attempts, or run again later';
  } else if (awsCode === null) {
    const netCode = (err as { code?: unknown } | null)?.code;
    if (typeof netCode === 'string' && /^E[A-Z]+$/.test(netCode)) {
      hint = 'check --endpoint-url, the network and any proxy settings';
    }
  }
  return new ImdsguardError(code, `${where}: ${awsCode ? `${awsCode}: ` : ''}${errorMessage(err)}`, {
    cause: err,
    hint,
    details: {
      operation: ctx.operation,
      accountId: ctx.accountId ?? null,
      region: ctx.region ?? null,
      instanceId: ctx.instanceId ?? null,
      awsCode,
    },
  });
}
