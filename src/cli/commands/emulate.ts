import { isIP } from 'node:net';
import { createEmulator, defaultInstance, loadInstanceFile } from '../../emulator/index.js';
import { ImdsguardError } from '../../errors.js';
import { FLAVORS, type Flavor } from '../../imds/flavors.js';
import { type ListenAddress, parseListen } from '../../net/listen.js';
import type { CommandSpec } from '../context.js';
import { collect, parseChoice, parseIntInRange } from '../options.js';

interface EmulateFlags {
  listen?: string[];
  tokens: string;
  endpoint: string;
  hopLimit: string;
  instance?: string;
  flavor: string;
  admin?: string;
  json?: boolean;
}

export const DEFAULT_EMULATE_LISTEN = '127.0.0.1:1338';

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

function httpUrl(a: ListenAddress): string {
  return isIP(a.host) === 6 ? `http://[${a.host}]:${a.port}` : `http://${a.host}:${a.port}`;
}

export const emulateCommand: CommandSpec = {
  name: 'emulate',
  summary:
    'Run a faithful IMDSv1/v2 emulator (AWS, or another cloud flavour) for tests and readiness checks.',
  examples: [
    [
      'imdsguard emulate --tokens required',
      'serve IMDS on 127.0.0.1:1338 with IMDSv2 enforced; point SDKs at it with AWS_EC2_METADATA_SERVICE_ENDPOINT',
    ],
    [
      'imdsguard emulate --listen 127.0.0.1:0 --listen [::1]:0 --json',
      'listen on free IPv4 and IPv6 ports and print them as one JSON line',
    ],
    [
      'imdsguard emulate --instance instance.yaml --admin 127.0.0.1:1339',
      'serve your own instance; change settings at runtime: curl -X PUT -d \'{"tokens":"required"}\' 127.0.0.1:1339/settings',
    ],
    ['imdsguard emulate --flavor gcp --listen 127.0.0.1:8080', 'serve the GCP metadata server API instead'],
  ],
  configure(cmd, ctx) {
    cmd
      .option(
        '--listen <HOST:PORT>',
        `address to listen on, repeatable; IPv6 as [::1]:PORT; port 0 picks a free one (default ${DEFAULT_EMULATE_LISTEN})`,
        collect,
      )
      .option('--tokens <mode>', 'HttpTokens: optional or required', 'optional')
      .option('--endpoint <state>', 'HttpEndpoint: enabled or disabled (disabled answers 403)', 'enabled')
      .option('--hop-limit <n>', 'HttpPutResponseHopLimit 1..64 (recorded and reported, not enforced)', '1')
      .option('--instance <FILE>', 'instance description, JSON or YAML (see docs/emulator.md)')
      .option('--flavor <cloud>', `metadata API to serve: ${FLAVORS.join(', ')}`, 'aws')
      .option(
        '--admin <HOST:PORT>',
        'loopback admin endpoint: GET/PUT /settings, GET /requests, POST /rotate',
      )
      .option('--json', 'print the listening addresses as one JSON line on stdout')
      .action(async (flags: EmulateFlags) => {
        const listen = (flags.listen ?? [DEFAULT_EMULATE_LISTEN]).map((v) => parseListen(v, '--listen'));
        const tokens = parseChoice(flags.tokens, ['optional', 'required'] as const, '--tokens');
        const endpoint = parseChoice(flags.endpoint, ['enabled', 'disabled'] as const, '--endpoint');
        const hopLimit = parseIntInRange(flags.hopLimit, 1, 64, '--hop-limit');
        const flavor: Flavor = parseChoice(flags.flavor, FLAVORS, '--flavor');
        let admin: ListenAddress | undefined;
        if (flags.admin !== undefined) {
          admin = parseListen(flags.admin, '--admin');
          if (!isLoopback(admin.host)) {
            throw new ImdsguardError(
              'IMDSGUARD_E_USAGE',
              `--admin: ${admin.host} is not a loopback address; the admin endpoint has no authentication`,
            );
          }
        }
        const instance = flags.instance === undefined ? defaultInstance() : loadInstanceFile(flags.instance);

        const emulator = createEmulator({
          flavor,
          instance,
          listen,
          settings: { tokens, endpoint, hopLimit },
          admin,
        });
        await emulator.start();
        const urls = emulator.addresses.map(httpUrl);
        const settingsText = `tokens ${tokens}, endpoint ${endpoint}, hop limit ${hopLimit}, not enforced`;
        for (const url of urls)
          ctx.stderr.write(`imdsguard emulate: ${flavor} listening on ${url} (${settingsText})\n`);
        if (emulator.adminUrl !== undefined)
          ctx.stderr.write(`imdsguard emulate: admin on ${emulator.adminUrl}\n`);
        if (flavor === 'aws' || flavor === 'alibaba') {
          ctx.stderr.write(`  export AWS_EC2_METADATA_SERVICE_ENDPOINT=${urls[0]}/\n`);
        }
        if (flags.json) {
          ctx.stdout.write(
            `${JSON.stringify({
              event: 'listening',
              flavor,
              urls,
              adminUrl: emulator.adminUrl ?? null,
              settings: emulator.settings,
              instanceId: instance.instanceId,
            })}\n`,
          );
        }
        const signal = await ctx.shutdown;
        const served = emulator.requests.length;
        await emulator.close();
        ctx.stderr.write(`imdsguard emulate: stopped (${signal}) (${served} request(s) in the log)\n`);
        if (flags.json)
          ctx.stdout.write(`${JSON.stringify({ event: 'stopped', signal, requests: served })}\n`);
      });
  },
};
