import { isIP } from 'node:net';
import { clientHint } from '../../emulator/flavors/clients.js';
import { createEmulator, defaultInstance, loadInstanceFile } from '../../emulator/index.js';
import { ImdsguardError } from '../../errors.js';
import { FLAVORS, type Flavor } from '../../imds/flavors.js';
import { type ListenAddress, parseListen } from '../../net/listen.js';
import { addOutputOptions, type OutputSpec, readOutputOptions } from '../common-options.js';
import type { CommandSpec } from '../context.js';
import { collect, parseChoice, parseIntInRange } from '../options.js';

interface EmulateFlags extends Record<string, unknown> {
  listen?: string[];
  tokens?: string;
  endpoint?: string;
  hopLimit?: string;
  instance?: string;
  flavor?: string;
  admin?: string;
}

/** stdout: nothing (text; the status lines go to stderr), or one JSON line per event (json). */
const OUTPUT: OutputSpec<'text' | 'json'> = {
  formats: ['text', 'json'],
  defaultText: 'text, nothing on stdout',
  output: false,
};

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
      'listen on free IPv4 and IPv6 ports and print them as one JSON line (and one when stopped)',
    ],
    [
      'imdsguard emulate --instance instance.yaml --admin 127.0.0.1:1339',
      'serve your own instance; change settings at runtime: curl -X PUT -d \'{"tokens":"required"}\' 127.0.0.1:1339/settings',
    ],
    [
      'imdsguard emulate --flavor gcp --listen 127.0.0.1:8080',
      'serve the GCP metadata server API instead; point Google clients at it with GCE_METADATA_HOST',
    ],
  ],
  configure(cmd, ctx) {
    cmd
      .option(
        '--listen <host:port>',
        `address to listen on, repeatable; IPv6 as [::1]:<port>; port 0 picks a free one (default: ${DEFAULT_EMULATE_LISTEN})`,
        collect,
      )
      .option('--tokens <mode>', 'HttpTokens: optional|required (default: optional)')
      .option('--endpoint <state>', 'HttpEndpoint: enabled|disabled; disabled answers 403 (default: enabled)')
      .option(
        '--hop-limit <n>',
        'HttpPutResponseHopLimit 1..64, recorded and reported, not enforced (default: 1)',
      )
      .option('--instance <file>', 'instance description, JSON or YAML (see docs/emulator.md)')
      .option('--flavor <flavor>', `metadata API to serve: ${FLAVORS.join('|')} (default: aws)`)
      .option(
        '--admin <host:port>',
        'loopback admin endpoint: GET/PUT /settings, GET /requests, POST /rotate',
      );
    addOutputOptions(cmd, OUTPUT).action(async (flags: EmulateFlags) => {
      const { format = 'text' } = readOutputOptions(flags, OUTPUT);
      const json = format === 'json';
      const listen = (flags.listen ?? [DEFAULT_EMULATE_LISTEN]).map((v) => parseListen(v, '--listen'));
      const tokens = parseChoice(flags.tokens ?? 'optional', ['optional', 'required'] as const, '--tokens');
      const endpoint = parseChoice(
        flags.endpoint ?? 'enabled',
        ['enabled', 'disabled'] as const,
        '--endpoint',
      );
      const hopLimit = parseIntInRange(flags.hopLimit ?? '1', 1, 64, '--hop-limit');
      const flavor: Flavor = parseChoice(flags.flavor ?? 'aws', FLAVORS, '--flavor');
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
      const hint = clientHint(flavor, urls[0] as string);
      for (const [name, value] of hint.env) ctx.stderr.write(`  export ${name}=${value}\n`);
      ctx.stderr.write(`  (${hint.note})\n`);
      if (json) {
        ctx.stdout.write(
          `${JSON.stringify({
            event: 'listening',
            flavor,
            urls,
            adminUrl: emulator.adminUrl ?? null,
            settings: emulator.settings,
            instanceId: instance.instanceId,
            env: Object.fromEntries(hint.env),
          })}\n`,
        );
      }
      const signal = await ctx.shutdown;
      const served = emulator.requests.length;
      await emulator.close();
      ctx.stderr.write(`imdsguard emulate: stopped (${signal}) (${served} request(s) in the log)\n`);
      if (json) ctx.stdout.write(`${JSON.stringify({ event: 'stopped', signal, requests: served })}\n`);
    });
  },
};
