/** Auto Scaling (awsquery protocol, Version 2011-01-01): DescribeAutoScalingGroups, DescribeLaunchConfigurations. */
import {
  decodeToken,
  encodeToken,
  FakeAwsError,
  type HandlerContext,
  type HandlerResult,
  intParam,
  listParam,
} from './context.js';
import type { FakeRegion, FakeTemplateRef } from './model.js';
import { leaf, node, queryList, XML_DECL } from './xml.js';

export const AUTOSCALING_NS = 'http://autoscaling.amazonaws.com/doc/2011-01-01/';

/** awsquery success envelope: <XResponse><XResult>...</XResult><ResponseMetadata>...</XResponse>. */
export function queryResponse(ns: string, action: string, requestId: string, inner: string): HandlerResult {
  return {
    body: `${XML_DECL}<${action}Response xmlns="${ns}"><${action}Result>${inner}</${action}Result><ResponseMetadata>${leaf('RequestId', requestId)}</ResponseMetadata></${action}Response>`,
    contentType: 'text/xml',
  };
}

export function queryErrorBody(
  ns: string,
  code: string,
  message: string,
  requestId: string,
  status: number,
): string {
  return `${XML_DECL}<ErrorResponse xmlns="${ns}"><Error>${leaf('Type', status >= 500 ? 'Receiver' : 'Sender')}${leaf('Code', code)}${leaf('Message', message)}</Error>${leaf('RequestId', requestId)}</ErrorResponse>`;
}

function regionOf(ctx: HandlerContext): FakeRegion | undefined {
  const account = ctx.fleet.accounts.get(ctx.accountId);
  if (!account)
    throw new FakeAwsError(
      'InvalidClientTokenId',
      'The security token included in the request is invalid.',
      403,
    );
  const region = account.regions.get(ctx.region);
  if (region && !region.enabled) {
    throw new FakeAwsError(
      'OptInRequired',
      'The AWS Access Key Id needs a subscription for the service',
      403,
    );
  }
  return region;
}

function templateSpec(ref: FakeTemplateRef): string {
  return [
    leaf('LaunchTemplateId', ref.launchTemplateId),
    leaf('LaunchTemplateName', ref.launchTemplateName),
    leaf('Version', ref.version),
  ].join('');
}

function describeAutoScalingGroups(ctx: HandlerContext): string {
  const region = regionOf(ctx);
  const names = listParam(ctx.params, 'AutoScalingGroupNames.member');
  const max = intParam(ctx.params, 'MaxRecords', 1, 100, 'ValidationError') ?? 50;
  const list = (region?.autoScalingGroups ?? []).filter((g) => names.length === 0 || names.includes(g.name));
  const key = names.join(',');
  const start = decodeToken(ctx.params.get('NextToken'), key, 'InvalidNextToken');
  const page = list.slice(start, start + max);
  const next = start + max < list.length ? encodeToken(start + max, key) : undefined;
  const items = page.map((g) =>
    [
      leaf('AutoScalingGroupName', g.name),
      leaf('AutoScalingGroupARN', g.arn),
      leaf('LaunchConfigurationName', g.launchConfigurationName),
      g.launchTemplate ? node('LaunchTemplate', templateSpec(g.launchTemplate)) : '',
      g.mixedInstancesTemplate
        ? node(
            'MixedInstancesPolicy',
            node(
              'LaunchTemplate',
              node('LaunchTemplateSpecification', templateSpec(g.mixedInstancesTemplate)),
            ),
          )
        : '',
      leaf('MinSize', g.minSize),
      leaf('MaxSize', g.maxSize),
      leaf('DesiredCapacity', g.desiredCapacity),
      leaf('DefaultCooldown', 300),
      queryList(
        'AvailabilityZones',
        [`${ctx.region}a`].map((z) => z),
      ),
      leaf('HealthCheckType', 'EC2'),
      leaf('CreatedTime', g.createdTime),
      queryList(
        'Instances',
        g.instanceIds.map((id) =>
          [
            leaf('InstanceId', id),
            leaf('AvailabilityZone', `${ctx.region}a`),
            leaf('LifecycleState', 'InService'),
            leaf('HealthStatus', 'Healthy'),
            leaf('ProtectedFromScaleIn', false),
          ].join(''),
        ),
      ),
    ].join(''),
  );
  return queryList('AutoScalingGroups', items) + leaf('NextToken', next);
}

function describeLaunchConfigurations(ctx: HandlerContext): string {
  const region = regionOf(ctx);
  const names = listParam(ctx.params, 'LaunchConfigurationNames.member');
  const max = intParam(ctx.params, 'MaxRecords', 1, 100, 'ValidationError') ?? 50;
  const list = (region?.launchConfigurations ?? []).filter(
    (c) => names.length === 0 || names.includes(c.name),
  );
  const key = names.join(',');
  const start = decodeToken(ctx.params.get('NextToken'), key, 'InvalidNextToken');
  const page = list.slice(start, start + max);
  const next = start + max < list.length ? encodeToken(start + max, key) : undefined;
  const items = page.map((c) =>
    [
      leaf('LaunchConfigurationName', c.name),
      leaf('LaunchConfigurationARN', c.arn),
      leaf('ImageId', c.imageId),
      leaf('InstanceType', c.instanceType),
      leaf('IamInstanceProfile', c.iamInstanceProfile),
      leaf('CreatedTime', c.createdTime),
      queryList('SecurityGroups', []),
      queryList('BlockDeviceMappings', []),
      c.metadataOptions
        ? node('MetadataOptions', [
            leaf('HttpTokens', c.metadataOptions.httpTokens),
            leaf('HttpPutResponseHopLimit', c.metadataOptions.httpPutResponseHopLimit),
            leaf('HttpEndpoint', c.metadataOptions.httpEndpoint),
          ])
        : '',
    ].join(''),
  );
  return queryList('LaunchConfigurations', items) + leaf('NextToken', next);
}

const ACTIONS: Record<string, (ctx: HandlerContext) => string> = {
  DescribeAutoScalingGroups: describeAutoScalingGroups,
  DescribeLaunchConfigurations: describeLaunchConfigurations,
};

export function handleAutoScaling(ctx: HandlerContext): HandlerResult {
  const h = ACTIONS[ctx.action];
  if (!h) throw new FakeAwsError('InvalidAction', `Could not find operation ${ctx.action}`);
  return queryResponse(AUTOSCALING_NS, ctx.action, ctx.requestId, h(ctx));
}
