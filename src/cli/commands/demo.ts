import { writeOutput } from '../../report/output.js';
import { addOutputOptions, type OutputSpec, readOutputOptions } from '../common-options.js';
import type { CommandSpec } from '../context.js';

const OUTPUT: OutputSpec<'table' | 'json'> = { formats: ['table', 'json'], defaultText: 'table' };

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary:
    'Start an emulator and a guard on loopback, replay real-client and attack requests, print verdicts.',
  examples: [
    ['imdsguard demo', 'the verdict table; exit 0 only if every verdict matched'],
    ['imdsguard demo --json', 'the verdicts as JSON'],
    ['imdsguard demo --events ./demo-events.jsonl', 'keep the events in a chosen file'],
  ],
  configure(cmd, ctx) {
    cmd.option('--events <file>', 'write the events to <file> (default: a new temporary directory)');
    addOutputOptions(cmd, OUTPUT).action(async (flags: { events?: string } & Record<string, unknown>) => {
      const { format = 'table', output } = readOutputOptions(flags, OUTPUT);
      const { renderVerdicts, runDemo } = await import('../../demo/run.js');
      const result = await runDemo({
        env: ctx.env,
        ...(flags.events ? { eventsFile: flags.events } : {}),
        log: (m) => {
          ctx.stderr.write(`imdsguard: ${m}\n`);
        },
      });
      const text =
        format === 'json'
          ? `${JSON.stringify(result, null, 2)}\n`
          : `imdsguard demo: emulator ${result.emulatorUrl} (IMDSv2 required), guard ${result.guardUrl} (enforce)\n\n${renderVerdicts(result)}`;
      await writeOutput(ctx.stdout, text, output, ctx.cwd);
      if (!result.ok) ctx.exitCode = 1;
    });
  },
};
