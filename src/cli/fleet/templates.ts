/**
 * fleet templates [--fix]: launch templates whose default version launches IMDSv1 instances, the Auto
 * Scaling groups that still launch them (or launch configurations), and the AMIs in use without
 * ImdsSupport v2.0 (reported, never changed: that change cannot be undone). --fix plans, and with
 * --yes applies, a new version per template (HttpTokens=required, everything else inherited through
 * SourceVersion) made the default; rollback restores the previous default version.
 */
import { planTemplates } from '../../fleet/plan/templates.js';
import type { Finding } from '../../fleet/posture/findings.js';
import { renderJson } from '../../report/json.js';
import { writeOutput } from '../../report/output.js';
import { renderTable } from '../../report/table.js';
import type { FleetSubcommand } from '../commands/fleet.js';
import { addFleetOptions, outputFormat, parseFleetOptions } from '../fleet-options.js';
import {
  addChangeOptions,
  collectForChange,
  executePlan,
  openChangeSession,
  parseChangeOptions,
} from './change-run.js';
import { afterText, beforeText } from './render.js';

function findingsTable(title: string, findings: readonly Finding[]): string {
  if (findings.length === 0) return '';
  return `\n${title}:\n${renderTable(findings, [
    { header: 'account', value: (f) => f.accountId },
    { header: 'region', value: (f) => f.region },
    { header: 'resource', value: (f) => f.resourceId },
    { header: 'finding', value: (f) => f.message, maxWidth: 120 },
  ])}`;
}

export const templatesCommand: FleetSubcommand = {
  name: 'templates',
  summary:
    'Report launch templates, Auto Scaling groups and AMIs that launch IMDSv1 instances; --fix adds a tokens-required version as the default (journalled).',
  examples: [
    ['imdsguard fleet templates --all-regions', 'report the regression sources'],
    ['imdsguard fleet templates --fix --dry-run', 'check permissions for the fix'],
    ['imdsguard fleet templates --fix --yes --journal changes.db', 'fix every default version, journalled'],
  ],
  configure(cmd, ctx) {
    addChangeOptions(addFleetOptions(cmd)).option(
      '--fix',
      'create a version with HttpTokens=required from each default version and make it the default',
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = parseFleetOptions(raw);
      const change = parseChangeOptions(raw, ctx);
      const { session, limiter } = await openChangeSession(fleet, ctx);
      try {
        const inv = await collectForChange(session, fleet, ctx, undefined);
        const report = planTemplates(inv);
        if (raw['fix'] === true) {
          await executePlan(ctx, {
            plan: report.plan,
            session,
            fleet,
            change,
            accounts: session.targets.accounts,
            args: { command: 'templates', fix: true, regions: session.targets.regions },
            limiter,
            concurrency: fleet.concurrency,
          });
          if (report.imageFindings.length > 0) {
            ctx.stderr.write(
              `${report.imageFindings.length} AMI(s) in use without ImdsSupport v2.0 are reported, never changed (see fleet templates without --fix).\n`,
            );
          }
          return;
        }
        const format = outputFormat(fleet, ctx);
        let text: string;
        if (format === 'table') {
          text = renderTable(
            report.plan.items,
            [
              { header: 'account', value: (i) => i.accountId },
              { header: 'region', value: (i) => i.region },
              { header: 'template', value: (i) => i.resourceId },
              {
                header: 'name',
                value: (i) => (i.type === 'launch-template' ? i.templateName : ''),
                maxWidth: 32,
              },
              { header: 'default', value: (i) => beforeText(i), maxWidth: 90 },
              {
                header: 'fix',
                value: (i) => (i.action === 'change' ? afterText(i) : (i.skip?.detail ?? '')),
                maxWidth: 90,
              },
            ],
            { empty: 'No launch template.' },
          );
          text += findingsTable('Auto Scaling groups that launch IMDSv1 instances', report.groupFindings);
          text += findingsTable(
            'Launch configurations that launch IMDSv1 instances',
            report.launchConfigurationFindings,
          );
          text += findingsTable(
            'Templates whose latest (not default) version allows IMDSv1',
            report.latestFindings,
          );
          text += findingsTable(
            'AMIs in use without ImdsSupport v2.0 (reported, never changed)',
            report.imageFindings,
          );
          for (const n of report.plan.notes.filter((x) => x.includes('pinned'))) text += `Note: ${n}\n`;
          const n = report.plan.items.filter((i) => i.action === 'change').length;
          text += `\n${n} template(s) to fix. Run with --fix to plan the fix.\n`;
        } else {
          text = renderJson({
            schemaVersion: 1,
            templates: report.plan.items,
            autoScalingGroups: report.groupFindings,
            launchConfigurations: report.launchConfigurationFindings,
            latestVersions: report.latestFindings,
            images: report.imageFindings,
            notes: report.plan.notes,
          });
        }
        await writeOutput(ctx.stdout, text, fleet.output, ctx.cwd);
      } finally {
        session.close();
      }
    });
  },
};
