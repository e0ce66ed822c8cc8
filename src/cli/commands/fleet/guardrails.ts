/** fleet guardrails: prints the SCP and IAM policies that keep IMDSv2 enforced (no AWS call). */
import { ImdsguardError } from '../../../errors.js';
import { buildGuardrails, GUARDRAIL_DEFAULTS, isRoleArn } from '../../../fleet/guardrails/policies.js';
import { renderJson } from '../../../report/json.js';
import { writeOutput } from '../../../report/output.js';
import { addOutputOptions, type OutputSpec, readOutputOptions } from '../../common-options.js';
import type { CommandSpec } from '../../context.js';
import { parseChoice, parseIntInRange } from '../../options.js';

/** Policies are JSON documents: the one format. */
const OUTPUT: OutputSpec<'json'> = {
  formats: ['json'],
  defaultText: 'json, the only format: policies are JSON',
};

export const guardrailsCommand: CommandSpec = {
  name: 'guardrails',
  summary:
    'Print SCP and IAM policies that keep IMDSv2 enforced (docs/guardrails.md explains how to apply them).',
  examples: [
    [
      'imdsguard fleet guardrails --admin-role arn:aws:iam::*:role/platform-admin',
      'both policies as one JSON document',
    ],
    [
      'imdsguard fleet guardrails --policy scp --max-hop-limit 1 > imds-scp.json',
      'the SCP alone, ready for aws organizations create-policy --content file://imds-scp.json',
    ],
  ],
  configure(cmd, ctx) {
    cmd
      .option(
        '--admin-role <arn>',
        `the only role allowed to change metadata options (default: ${GUARDRAIL_DEFAULTS.adminRoleArn})`,
      )
      .option(
        '--max-hop-limit <n>',
        `the highest hop limit a launch may ask for, 1..64 (default: ${GUARDRAIL_DEFAULTS.maxHopLimit})`,
        (v) => parseIntInRange(v, 1, 64, '--max-hop-limit'),
      )
      .option('--policy <which>', 'scp|iam|both (default: both)', (v) =>
        parseChoice(v, ['scp', 'iam', 'both'] as const, '--policy'),
      );
    addOutputOptions(cmd, OUTPUT);
    cmd.action(async (raw: Record<string, unknown>) => {
      const out = readOutputOptions(raw, OUTPUT);
      const admin = typeof raw['adminRole'] === 'string' ? raw['adminRole'] : undefined;
      if (admin !== undefined && !isRoleArn(admin)) {
        throw new ImdsguardError(
          'IMDSGUARD_E_USAGE',
          `--admin-role: expected a role ARN such as arn:aws:iam::123456789012:role/platform-admin, got "${admin}"`,
        );
      }
      const g = buildGuardrails({
        adminRoleArn: admin,
        maxHopLimit: raw['maxHopLimit'] as number | undefined,
      });
      const which = (raw['policy'] as 'scp' | 'iam' | 'both' | undefined) ?? 'both';
      const doc = which === 'scp' ? g.scp : which === 'iam' ? g.iam : { scp: g.scp, iam: g.iam };
      await writeOutput(ctx.stdout, renderJson(doc), out.output, ctx.cwd);
    });
  },
};
