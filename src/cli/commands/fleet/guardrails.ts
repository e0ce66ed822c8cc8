/**
 * fleet guardrails: prints the SCP, the IAM policy and the AWS Organizations declarative policy that
 * keep IMDSv2 enforced (no AWS call).
 */
import { ImdsguardError } from '../../../errors.js';
import {
  buildDeclarativePolicy,
  DECLARATIVE_DEFAULTS,
  MAX_EXCEPTION_MESSAGE,
} from '../../../fleet/guardrails/declarative.js';
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

const POLICIES = ['scp', 'iam', 'declarative', 'both', 'all'] as const;

function exceptionMessage(v: string): string {
  if (v.trim().length === 0 || v.length > MAX_EXCEPTION_MESSAGE) {
    throw new ImdsguardError(
      'IMDSGUARD_E_USAGE',
      `--exception-message: expected 1..${MAX_EXCEPTION_MESSAGE} characters, got ${v.length}`,
    );
  }
  return v;
}

export const guardrailsCommand: CommandSpec = {
  name: 'guardrails',
  summary:
    'Print SCP, IAM and declarative policies that keep IMDSv2 enforced (docs/guardrails.md explains how to apply them).',
  examples: [
    [
      'imdsguard fleet guardrails --admin-role arn:aws:iam::*:role/platform-admin',
      'the three policies as one JSON document',
    ],
    [
      'imdsguard fleet guardrails --policy scp --max-hop-limit 1 > imds-scp.json',
      'the SCP alone, ready for aws organizations create-policy --content file://imds-scp.json',
    ],
    [
      "imdsguard fleet guardrails --policy declarative --exception-message 'IMDSv2 only: see go/imds' > imds-ec2.json",
      'the declarative policy for EC2 (IMDS defaults and enforcement for every account below it)',
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
        `the highest hop limit a launch may ask for (SCP, IAM), and the default hop limit (declarative), 1..64 (default: ${GUARDRAIL_DEFAULTS.maxHopLimit})`,
        (v) => parseIntInRange(v, 1, 64, '--max-hop-limit'),
      )
      .option('--policy <which>', 'scp|iam|declarative, both (scp and iam) or all (default: all)', (v) =>
        parseChoice(v, POLICIES, '--policy'),
      )
      .option(
        '--exception-message <text>',
        `declarative: the error message noncompliant actions get, 1..${MAX_EXCEPTION_MESSAGE} characters, no personal data (default: "${DECLARATIVE_DEFAULTS.exceptionMessage}")`,
        exceptionMessage,
      )
      .option(
        '--no-enforce',
        'declarative: leave http_tokens_enforced out (set the defaults only; launches may still ask for optional)',
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
      const maxHopLimit = raw['maxHopLimit'] as number | undefined;
      const g = buildGuardrails({ adminRoleArn: admin, maxHopLimit });
      const declarative = buildDeclarativePolicy({
        hopLimit: maxHopLimit,
        enforce: raw['enforce'] !== false,
        exceptionMessage: raw['exceptionMessage'] as string | undefined,
      });
      const which = (raw['policy'] as (typeof POLICIES)[number] | undefined) ?? 'all';
      const doc =
        which === 'scp'
          ? g.scp
          : which === 'iam'
            ? g.iam
            : which === 'declarative'
              ? declarative
              : which === 'both'
                ? { scp: g.scp, iam: g.iam }
                : { scp: g.scp, iam: g.iam, declarative };
      await writeOutput(ctx.stdout, renderJson(doc), out.output, ctx.cwd);
    });
  },
};
