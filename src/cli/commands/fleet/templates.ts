/**
 * `fleet templates [--fix]`: launch templates whose default version launches IMDSv1 instances, the
 * Auto Scaling groups that still launch them (or launch configurations), and the AMIs in use without
 * ImdsSupport v2.0 (reported, never changed: that change cannot be undone). --fix plans, and with
 * --yes applies, a new version per template (HttpTokens=required, everything else inherited through
 * SourceVersion) made the default; rollback restores the previous default version.
 */

import type { TemplatesReport } from '../../../fleet/plan/templates.js';
import type { Finding } from '../../../fleet/posture/findings.js';
import { runTemplates } from '../../../fleet/run/templates.js';
import { afterText, beforeText } from '../../../report/changes.js';
import { renderJson } from '../../../report/json.js';
import { renderTable } from '../../../report/table.js';
import { readOutputOptions } from '../../common-options.js';
import type { CommandSpec } from '../../context.js';
import {
  addChangeOptions,
  addScanOptions,
  FLEET_OUTPUT,
  readChangeOptions,
  readFleetOptions,
} from '../../fleet-options.js';
import { changePresenter, finishChange, outputFormat, runIo, writeDocument } from '../../fleet-run.js';

function findingsTable(title: string, findings: readonly Finding[]): string {
  if (findings.length === 0) return '';
  return `\n${title}:\n${renderTable(findings, [
    { header: 'account', value: (f) => f.accountId },
    { header: 'region', value: (f) => f.region },
    { header: 'resource', value: (f) => f.resourceId },
    { header: 'finding', value: (f) => f.message, maxWidth: 120 },
  ])}`;
}

function templatesTable(report: TemplatesReport): string {
  let text = renderTable(
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
  text += findingsTable('Templates whose latest (not default) version allows IMDSv1', report.latestFindings);
  text += findingsTable(
    'AMIs in use without ImdsSupport v2.0 (reported, never changed)',
    report.imageFindings,
  );
  for (const n of report.plan.notes.filter((x) => x.includes('pinned'))) text += `Note: ${n}\n`;
  const n = report.plan.items.filter((i) => i.action === 'change').length;
  text += `\n${n} template(s) to fix. Run with --fix to plan the fix.\n`;
  return text;
}

function templatesJson(report: TemplatesReport): string {
  return renderJson({
    schemaVersion: 1,
    templates: report.plan.items,
    autoScalingGroups: report.groupFindings,
    launchConfigurations: report.launchConfigurationFindings,
    latestVersions: report.latestFindings,
    images: report.imageFindings,
    notes: report.plan.notes,
  });
}

export const templatesCommand: CommandSpec = {
  name: 'templates',
  summary:
    'Report launch templates, Auto Scaling groups and AMIs that launch IMDSv1 instances; --fix adds a tokens-required version as the default (journalled).',
  examples: [
    ['imdsguard fleet templates --all-regions', 'report the regression sources'],
    ['imdsguard fleet templates --fix --dry-run', 'check permissions for the fix'],
    ['imdsguard fleet templates --fix --yes --journal changes.db', 'fix every default version, journalled'],
  ],
  configure(cmd, ctx) {
    addChangeOptions(addScanOptions(cmd)).option(
      '--fix',
      'create a version with HttpTokens=required from each default version and make it the default',
    );
    cmd.action(async (raw: Record<string, unknown>) => {
      const fleet = readFleetOptions(raw);
      const out = readOutputOptions(raw, FLEET_OUTPUT);
      const change = readChangeOptions(raw, ctx);
      const fix = raw['fix'] === true;
      const r = await runTemplates({ fleet, change, fix }, runIo(ctx), ctx.env, changePresenter(ctx, out));
      if (!fix) {
        const text = outputFormat(out, ctx) === 'table' ? templatesTable(r.report) : templatesJson(r.report);
        await writeDocument(ctx, out, text);
      }
      finishChange(ctx, raw['verbose'] === true, { failed: r.failed, stats: r.outcome?.stats ?? null });
    });
  },
};
