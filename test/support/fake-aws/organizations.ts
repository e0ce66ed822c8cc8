/** Organizations (AWS JSON 1.1, X-Amz-Target AWSOrganizationsV20161128.*): ListAccounts. */
import {
  decodeToken,
  encodeToken,
  FakeAwsError,
  type HandlerContext,
  type HandlerResult,
} from './context.js';

export const ORGANIZATIONS_TARGET = 'AWSOrganizationsV20161128';

function listAccounts(ctx: HandlerContext): unknown {
  if (ctx.accountId !== ctx.fleet.managementAccountId) {
    throw new FakeAwsError('AccessDeniedException', "You don't have permissions to access this resource.");
  }
  const maxRaw = ctx.json['MaxResults'];
  const max = maxRaw === undefined ? 20 : Number(maxRaw);
  if (!Number.isInteger(max) || max < 1 || max > 20) {
    throw new FakeAwsError('InvalidInputException', 'MaxResults must be between 1 and 20');
  }
  const list = [...ctx.fleet.accounts.values()];
  const start = decodeToken(ctx.json['NextToken'] as string | undefined, 'accounts', 'InvalidInputException');
  const page = list.slice(start, start + max);
  return {
    Accounts: page.map((a) => ({
      Id: a.accountId,
      Arn: `arn:aws:organizations::${ctx.fleet.managementAccountId}:account/o-fake/${a.accountId}`,
      Email: a.email,
      Name: a.name,
      Status: a.status,
      State: a.status,
      JoinedMethod: a.accountId === ctx.fleet.managementAccountId ? 'CREATED' : 'INVITED',
      JoinedTimestamp: Date.UTC(2020, 0, 1) / 1000,
    })),
    ...(start + max < list.length ? { NextToken: encodeToken(start + max, 'accounts') } : {}),
  };
}

const ACTIONS: Record<string, (ctx: HandlerContext) => unknown> = {
  ListAccounts: listAccounts,
};

export function handleOrganizations(ctx: HandlerContext): HandlerResult {
  const h = ACTIONS[ctx.action];
  if (!h) throw new FakeAwsError('UnknownOperationException', `Unknown operation ${ctx.action}`);
  return { body: JSON.stringify(h(ctx)), contentType: 'application/x-amz-json-1.1' };
}
