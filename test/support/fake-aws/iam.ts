/** IAM (awsquery protocol, Version 2010-05-08, a global service): GetInstanceProfile. */
import { queryResponse } from './autoscaling.js';
import { FakeAwsError, type HandlerContext, type HandlerResult } from './context.js';
import { leaf, node, queryList } from './xml.js';

export const IAM_NS = 'https://iam.amazonaws.com/doc/2010-05-08/';

function getInstanceProfile(ctx: HandlerContext): string {
  const name = ctx.params.get('InstanceProfileName') ?? '';
  const account = ctx.fleet.accounts.get(ctx.accountId);
  const profile = account?.instanceProfiles.get(name);
  if (!profile) {
    throw new FakeAwsError('NoSuchEntity', `Instance Profile ${name} cannot be found.`, 404);
  }
  const created = new Date(Date.UTC(2024, 0, 1));
  return node('InstanceProfile', [
    leaf('Path', profile.path),
    leaf('InstanceProfileName', name),
    leaf('InstanceProfileId', `AIPA${Buffer.from(name).toString('hex').slice(0, 16).toUpperCase()}`),
    leaf('Arn', `arn:aws:iam::${ctx.accountId}:instance-profile${profile.path}${name}`),
    leaf('CreateDate', created),
    queryList(
      'Roles',
      profile.roles.map((role) =>
        [
          leaf('Path', '/'),
          leaf('RoleName', role),
          leaf('RoleId', `AROA${Buffer.from(role).toString('hex').slice(0, 16).toUpperCase()}`),
          leaf('Arn', `arn:aws:iam::${ctx.accountId}:role/${role}`),
          leaf('CreateDate', created),
        ].join(''),
      ),
    ),
  ]);
}

const ACTIONS: Record<string, (ctx: HandlerContext) => string> = {
  GetInstanceProfile: getInstanceProfile,
};

export function handleIam(ctx: HandlerContext): HandlerResult {
  const h = ACTIONS[ctx.action];
  if (!h) throw new FakeAwsError('InvalidAction', `Could not find operation ${ctx.action}`);
  return queryResponse(IAM_NS, ctx.action, ctx.requestId, h(ctx));
}
