/**
 * CloudWatch, for issue 9 (usage evidence) to fill in.
 *
 * The installed @aws-sdk/client-cloudwatch (3.1164) speaks AWS JSON 1.0 (awsQueryCompatible):
 *   POST /  Content-Type: application/x-amz-json-1.0
 *   X-Amz-Target: GraniteServiceVersion20100801.GetMetricData
 *   SigV4 credential scope service: "monitoring"
 * Errors: HTTP 400 with `x-amzn-query-error: Code;Sender` and body {"__type": "...#Code", "message": "..."}.
 * Timestamps in JSON are epoch seconds (numbers).
 * The server routes every request with that target prefix here (see server.ts). Add a metrics model
 * (e.g. per account/region/instance MetadataNoToken datapoints) to FakeRegion when implementing it.
 */
import { FakeAwsError, type HandlerContext, type HandlerResult } from './context.js';

export const CLOUDWATCH_TARGET = 'GraniteServiceVersion20100801';

const ACTIONS: Record<string, (ctx: HandlerContext) => unknown> = {};

export function handleCloudWatch(ctx: HandlerContext): HandlerResult {
  const h = ACTIONS[ctx.action];
  if (!h)
    throw new FakeAwsError(
      'UnknownOperationException',
      `CloudWatch ${ctx.action} is not implemented by fake-aws yet`,
    );
  return { body: JSON.stringify(h(ctx)), contentType: 'application/x-amz-json-1.0' };
}
