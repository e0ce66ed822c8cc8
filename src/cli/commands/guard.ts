import type { ConfigFlags } from '../../config/index.js';
import { errorMessage, isImdsguardError } from '../../errors.js';
import { GUARD_MODES } from '../../guard/events/types.js';
import { FLAVORS } from '../../imds/flavors.js';
import type { CommandSpec } from '../context.js';
import { collect, parseChoice, parseList } from '../options.js';

export const guardCommand: CommandSpec = {
  name: 'guard',
  summary: 'Run the guard: a policy-enforcing reverse proxy in front of the metadata service.',
  examples: [
    ['imdsguard guard', 'enforce the default policy on 127.0.0.1:16925 and [::1]:16925, events on stdout'],
    [
      'imdsguard guard --mode monitor --events /var/log/imdsguard/events.jsonl',
      'forward everything and record what enforce would refuse',
    ],
    ['imdsguard guard --config /etc/imdsguard/guard.yaml', 'run with a config file (SIGHUP reloads it)'],
    [
      'imdsguard guard --allow-exe /opt/app/* --allow-user deploy --require-v2',
      'IMDSv2 only, except for named callers',
    ],
    [
      'imdsguard guard --mode trap --listen 127.0.0.1:8011',
      'a canary: forward nothing, alert on every request',
    ],
  ],
  configure(cmd, ctx) {
    cmd
      .option('--config <file>', 'YAML or JSON config file (default: IMDSGUARD_CONFIG when set)')
      .option(
        '--listen <host:port>',
        'listen address, repeatable (default: 127.0.0.1:16925 and [::1]:16925)',
        collect,
      )
      .option(
        '--allow-remote-listen',
        'enforce/monitor: allow a non-loopback --listen (remote tokenless callers then need the secret or a rule)',
      )
      .option(
        '--upstream <url>',
        "the metadata service (default: the flavour's, http://169.254.169.254 for aws)",
      )
      .option('--mode <mode>', `${GUARD_MODES.join('|')} (default: enforce)`, (v) =>
        parseChoice(v, GUARD_MODES, '--mode'),
      )
      .option('--flavor <flavor>', `cloud flavour: ${FLAVORS.join('|')} (default: aws)`, (v) =>
        parseChoice(v, FLAVORS, '--flavor'),
      )
      .option(
        '--auth-secret <secret>',
        'secret a tokenless caller may send in X-Meta-Auth (prefer env XHEADER)',
      )
      .option('--auth-header <name>', 'name of the secret header (default: X-Meta-Auth)')
      .option(
        '--allow-exe <list>',
        'executables allowed without a token, comma-separated: exact, /dir/* prefix or glob',
        parseList,
      )
      .option(
        '--allow-user <list>',
        'users (names or uids) allowed without a token, comma-separated',
        parseList,
      )
      .option(
        '--allow-ua <list>',
        'User-Agent prefixes allowed without a token, comma-separated (replaces the defaults)',
        parseList,
      )
      .option('--require-v2', 'refuse tokenless requests except from allowed callers or with the secret')
      .option('--events <file>', 'append JSON-lines events to <file> (default: stdout)')
      .option('--db <file>', 'also keep events in the SQLite event store <file>')
      .option('--admin <host:port>', 'admin endpoint on loopback: /healthz, /readyz, /metrics')
      .option('--alert <url>', 'generic webhook for alerts, repeatable', collect)
      .action(async (opts: ConfigFlags) => {
        // The guard's own modules load when it runs, not for --help (see commands/index.ts).
        const [{ describeOrigins, loadConfig, loadConfigWithOrigins }, { wireGuard }, { formatListen }] =
          await Promise.all([
            import('../../config/index.js'),
            import('../../guard/wire.js'),
            import('../../net/listen.js'),
          ]);
        const flags: ConfigFlags = {};
        for (const [k, v] of Object.entries(opts))
          if (v !== undefined) (flags as Record<string, unknown>)[k] = v;
        const sources = { env: ctx.env, flags, cwd: ctx.cwd };
        const { config, origins } = loadConfigWithOrigins(sources);
        const log = (m: string) => {
          ctx.stderr.write(`imdsguard: ${m}\n`);
        };
        const wired = await wireGuard({ config, stdout: ctx.stdout, log });
        try {
          await wired.guard.start();
        } catch (err) {
          await wired.close();
          throw err;
        }
        const g = config.guard;
        log(
          `guard (${g.mode}, ${g.flavor}) listening on ${wired.guard.addresses.map(formatListen).join(', ')}, upstream ${g.upstream.href}, events to ${wired.eventsTarget}${wired.outputs.adminUrl ? `, admin ${wired.outputs.adminUrl}` : ''}`,
        );
        log(`attribution: ${wired.attribution}`);
        log(`settings: ${describeOrigins(origins)}`);
        // SIGHUP: reopen the events file (logrotate renamed it) and apply the config, one at a time.
        const reload = async () => {
          let next: ReturnType<typeof loadConfig>;
          try {
            next = loadConfig(sources);
            const { needRestart, problems } = await wired.reload(next);
            const later =
              needRestart.length > 0 ? `; not applied until a restart: ${needRestart.join(', ')}` : '';
            log(`configuration reloaded (mode ${next.guard.mode}), events to ${wired.eventsTarget}${later}`);
            for (const p of problems) log(`reload: ${p}`);
          } catch (err) {
            const code = isImdsguardError(err) ? err.code : 'IMDSGUARD_E_INTERNAL';
            log(`reload failed, keeping the running configuration: ${errorMessage(err)} [${code}]`);
            await wired.reopenEvents().then(
              () => log(`events to ${wired.eventsTarget} (reopened)`),
              (e: unknown) => log(`events: reopening ${wired.eventsTarget} failed: ${errorMessage(e)}`),
            );
          }
        };
        let reloading = Promise.resolve();
        const unsubscribe = ctx.onReload(() => {
          reloading = reloading.then(reload);
        });
        const signal = await ctx.shutdown;
        unsubscribe();
        log(`${signal}: shutting down`);
        await reloading;
        await wired.close();
      });
  },
};
