import { renderVerdicts, runDemo } from '../../demo/run.js';
import type { CommandSpec } from '../context.js';

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
    cmd
      .option('--json', 'print the verdicts as JSON')
      .option('--events <file>', 'write the events here (default: a new temp directory)')
      .action(async (opts: { json?: boolean; events?: string }) => {
        const result = await runDemo({
          env: ctx.env,
          ...(opts.events ? { eventsFile: opts.events } : {}),
          log: (m) => {
            ctx.stderr.write(`imdsguard: ${m}\n`);
          },
        });
        if (opts.json) ctx.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else {
          ctx.stdout.write(
            `imdsguard demo: emulator ${result.emulatorUrl} (IMDSv2 required), guard ${result.guardUrl} (enforce)\n\n`,
          );
          ctx.stdout.write(renderVerdicts(result));
        }
        if (!result.ok) ctx.exitCode = 1;
      });
  },
};
