/** STS (awsquery protocol, Version 2011-06-15): AssumeRole and GetCallerIdentity. */
import { randomBytes } from 'node:crypto';
import { queryResponse } from './autoscaling.js';
import { FakeAwsError, type HandlerContext, type HandlerResult, intParam } from './context.js';
import { leaf, node } from './xml.js';

export const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** Access key ids of assumed-role sessions encode the account: ASIA + 12-digit account + 4 hex. */
export function sessionAccessKeyId(accountId: string): string {
  return `ASIA${accountId}${randomBytes(2).toString('hex').toUpperCase()}`;
}

/**
 * AssumeRole, as the STS API reference documents DurationSeconds: "from 900 seconds (15 minutes) up to
 * the maximum session duration set for the role ... If you specify a value higher than this setting
 * ..., the operation fails" (the answer is `ValidationError: The requested DurationSeconds exceeds the
 * MaxSessionDuration set for this role.`); "By default, the value is set to 3600 seconds"; and "if you
 * assume a role using role chaining and provide a DurationSeconds parameter value greater than one
 * hour, the operation fails". The role's maximum is FakeAccount.roleMaxSessionSeconds (default 3600,
 * IAM's default MaxSessionDuration). Credentials expire DurationSeconds after the call (fake clock).
 */
function assumeRole(ctx: HandlerContext): string {
  const arn = ctx.params.get('RoleArn') ?? '';
  const sessionName = ctx.params.get('RoleSessionName') ?? '';
  if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) {
    throw new FakeAwsError('ValidationError', 'RoleSessionName must be 2..64 characters of [\\w+=,.@-]');
  }
  const m = /^arn:aws[\w-]*:iam::(\d{12}):role\/(?:.*\/)?([\w+=,.@-]+)$/.exec(arn);
  if (!m) throw new FakeAwsError('ValidationError', `${arn} is invalid`);
  const accountId = m[1] as string;
  const roleName = m[2] as string;
  const duration = intParam(ctx.params, 'DurationSeconds', 900, 43_200, 'ValidationError') ?? 3600;
  const account = ctx.fleet.accounts.get(accountId);
  if (!account?.roles.has(roleName) || ctx.faults.isAssumeDenied(accountId)) {
    throw new FakeAwsError(
      'AccessDenied',
      `User: arn:aws:iam::${ctx.accountId}:user/fake-admin is not authorized to perform: sts:AssumeRole on resource: ${arn}`,
      403,
    );
  }
  const max = account.roleMaxSessionSeconds?.get(roleName) ?? 3600;
  if (duration > max) {
    throw new FakeAwsError(
      'ValidationError',
      'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    );
  }
  if (ctx.sessions.has(ctx.accessKeyId) && duration > 3600) {
    throw new FakeAwsError(
      'ValidationError',
      'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
    );
  }
  const accessKeyId = sessionAccessKeyId(accountId);
  const expiresAt = ctx.now + duration * 1000;
  ctx.sessions.set(accessKeyId, { accessKeyId, accountId, roleName, sessionName, expiresAt });
  return (
    node('Credentials', [
      leaf('AccessKeyId', accessKeyId),
      leaf('SecretAccessKey', randomBytes(20).toString('base64')),
      leaf('SessionToken', `FwoFAKE${randomBytes(24).toString('base64')}`),
      leaf('Expiration', new Date(expiresAt)),
    ]) +
    node('AssumedRoleUser', [
      leaf('AssumedRoleId', `AROAFAKE${accountId}:${sessionName}`),
      leaf('Arn', `arn:aws:sts::${accountId}:assumed-role/${roleName}/${sessionName}`),
    ])
  );
}

function getCallerIdentity(ctx: HandlerContext): string {
  const s = ctx.sessions.get(ctx.accessKeyId);
  const arn = s
    ? `arn:aws:sts::${s.accountId}:assumed-role/${s.roleName}/${s.sessionName}`
    : `arn:aws:iam::${ctx.accountId}:user/fake-admin`;
  return (
    leaf('Arn', arn) +
    leaf('UserId', s ? `AROAFAKE:${s.sessionName}` : 'AIDAFAKEADMIN') +
    leaf('Account', ctx.accountId)
  );
}

const ACTIONS: Record<string, (ctx: HandlerContext) => string> = {
  AssumeRole: assumeRole,
  GetCallerIdentity: getCallerIdentity,
};

export function handleSts(ctx: HandlerContext): HandlerResult {
  const h = ACTIONS[ctx.action];
  if (!h) throw new FakeAwsError('InvalidAction', `Could not find operation ${ctx.action}`);
  return queryResponse(STS_NS, ctx.action, ctx.requestId, h(ctx));
}
