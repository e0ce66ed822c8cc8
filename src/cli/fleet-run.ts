/**
 * What the fleet commands need around a use case: its RunIo from the CLI context, the change
 * presenter, and the --verbose API call table.
 */
import type { ChangePresenter } from '../fleet/run/change.js';
import { type InstancePlanner, runInstanceChange } from '../fleet/run/instances.js';
import type { RunIo } from '../fleet/run/io.js';
import { renderChange } from '../report/changes.js';
import { type RunStats, renderApiCalls } from '../report/fleet.js';
import { type OutputFormat, resolveFormat, writeOutput } from '../report/output.js';
import type { OutputArgs } from './common-options.js';
import type { CliContext, CommandSpec } from './context.js';
import { addInstanceChangeOptions, readInstanceChangeOptions } from './fleet-options.js';

/**
 * The use case's RunIo: notices on stderr, the context's confirmation, and a signal that aborts when
 * the user stops the command. A shutdown promise that had already resolved when the command started
 * (in-process test contexts resolve it up front to stop long-running commands) does not stop a fleet
 * run: only a signal that arrives after it started does.
 */
export function runIo(ctx: CliContext): RunIo {
  const stop = new AbortController();
  let armed = false;
  setImmediate(() => {
    armed = true;
  });
  void ctx.shutdown.then((signal) => {
    if (armed) stop.abort(signal);
  });
  return { output: ctx.stderr, confirm: (q) => ctx.confirm(q), signal: stop.signal };
}

/** The format for this run: --format, else table on a terminal (stdout, no --output), else json. */
export function outputFormat(out: OutputArgs<OutputFormat>, ctx: CliContext): OutputFormat {
  return resolveFormat(out.format, out.output === undefined && ctx.stdout.isTTY === true);
}

/** Writes a rendered document to --output or stdout. */
export function writeDocument(ctx: CliContext, out: OutputArgs, text: string): Promise<void> {
  return writeOutput(ctx.stdout, text, out.output, ctx.cwd);
}

/**
 * Change documents in the run's format. On a terminal the plan is printed first, before any question
 * or call; the results follow as a compact table. Scripts (json, csv, ndjson, --output) get one
 * document at the end.
 */
export function changePresenter(ctx: CliContext, out: OutputArgs<OutputFormat>): ChangePresenter {
  const format = outputFormat(out, ctx);
  const planFirst = format === 'table' && out.output === undefined;
  return {
    planFirst: planFirst ? (doc) => writeDocument(ctx, out, renderChange(doc, format)) : undefined,
    show: (doc) =>
      writeDocument(ctx, out, renderChange(doc, format, { resultsOnly: planFirst && doc.result !== null })),
  };
}

/** With --verbose: the run's duration and AWS API calls on stderr. */
export function printStats(ctx: CliContext, verbose: boolean, stats: RunStats | null): void {
  if (!verbose || stats === null) return;
  ctx.stderr.write(`\nAWS API calls (${stats.durationMs} ms):\n`);
  ctx.stderr.write(renderApiCalls({ total: stats.apiCalls, byOperation: stats.apiCallsByOperation }));
}

/** After a change: --verbose API calls, and exit 1 when something failed. */
export function finishChange(
  ctx: CliContext,
  verbose: boolean,
  outcome: { failed: boolean; stats: RunStats | null },
): void {
  printStats(ctx, verbose, outcome.stats);
  if (outcome.failed) ctx.exitCode = 1;
}

/**
 * The whole `configure` of an instance change that has no arguments of its own (disable, relax,
 * enable): the shared selection and change options, then runInstanceChange with `planner`.
 */
export function instanceChangeCommand(planner: InstancePlanner): CommandSpec['configure'] {
  return (cmd, ctx) => {
    addInstanceChangeOptions(cmd);
    cmd.action(async (raw: Record<string, unknown>) => {
      const args = readInstanceChangeOptions(raw, ctx);
      const outcome = await runInstanceChange(
        planner,
        { ...args, onlyReady: null },
        runIo(ctx),
        ctx.env,
        changePresenter(ctx, args.out),
      );
      finishChange(ctx, args.verbose, outcome);
    });
  };
}
