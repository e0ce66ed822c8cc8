import { createHash, randomBytes } from 'node:crypto';
import type { TrapConfig } from '../../config/schema.js';
import type { CredentialSet, CredentialSource } from '../../emulator/credentials.js';
import { createFlavorHandler } from '../../emulator/flavors/index.js';
import { type InstanceModel, parseInstance } from '../../emulator/instance.js';
import type { EmulatorSettings, EmulatorState, EmuRequest } from '../../emulator/types.js';
import type { ImdsAnswer } from '../../imds/answer.js';
import type { Flavor } from '../../imds/flavors.js';

/**
 * Trap mode: answers from the emulator, never from the metadata service. The instance is the
 * emulator's instance model, derived from the host name (stable across requests and restarts,
 * different per host); the flavour's emulator handler answers, so the token PUT works and its tokens
 * look like the service's, a bad token gets 401, unknown paths the service's 404 page, listings are
 * text/plain. Honey credentials are served only when configured; otherwise the instance has no role
 * and no user data.
 */

export interface Trap {
  /** The answer to a request (its header names lower-case). Never contacts anything. */
  answer(req: EmuRequest): ImdsAnswer;
  /** The instance the trap pretends to be. */
  readonly instance: InstanceModel;
}

/** The trap never disables its endpoint and never requires tokens: it answers v1 and v2 alike. */
const TRAP_SETTINGS: Readonly<EmulatorSettings> = Object.freeze({
  tokens: 'optional',
  endpoint: 'enabled',
  hopLimit: 1,
});

const HOUR_MS = 3_600_000;
/** Honey credentials look as if they rotated at the top of each hour and last six hours. */
const HONEY_LIFETIME_MS = 6 * HOUR_MS;

const DIRECTIONS: Readonly<Record<string, string>> = {
  north: 'n',
  south: 's',
  east: 'e',
  west: 'w',
  central: 'c',
  northeast: 'ne',
  northwest: 'nw',
  southeast: 'se',
  southwest: 'sw',
};

/** us-east-1 -> use1, ap-southeast-2 -> apse2, us-gov-west-1 -> usgw1 (the AZ id prefix AWS uses). */
export function regionCode(region: string): string {
  const parts = region.split('-');
  const geo = parts[0] ?? 'us';
  const n = parts[parts.length - 1] ?? '1';
  const middle = parts.slice(1, -1).map((p) => DIRECTIONS[p] ?? p.slice(0, 1));
  return `${geo}${middle.join('')}${n}`;
}

/** The instance the trap shows: every id derived from the host name, the rest realistic defaults. */
export function trapInstance(config: TrapConfig, hostname: string, now: number): InstanceModel {
  const seed = createHash('sha256').update(`imdsguard-trap:${hostname}`).digest();
  const hex = (from: number, len: number) => seed.toString('hex').slice(from, from + len);
  const region = config.region;
  const ip = `10.${seed[8]! % 250}.${seed[9]! % 250}.${(seed[10]! % 250) + 2}`;
  const account = String(100000000000 + (seed.readUInt32BE(20) % 899999999999)).padStart(12, '1');
  const zone = 'abc'[seed[24]! % 3] as string;
  const honey = config.honeyCredentials;
  const launch = new Date(now - HOUR_MS * (5 + (seed[25]! % 100))).toISOString().replace(/\.\d+Z$/, 'Z');
  return parseInstance(
    {
      instanceId: config.instanceId ?? `i-0${hex(0, 16)}`,
      amiId: `ami-0${hex(16, 16)}`,
      instanceType: 't3.medium',
      accountId: account,
      region,
      availabilityZone: `${region}${zone}`,
      availabilityZoneId: `${regionCode(region)}-az${(seed[24]! % 6) + 1}`,
      architecture: 'x86_64',
      launchTime: launch,
      hostname: `ip-${ip.replace(/\./g, '-')}.${region === 'us-east-1' ? 'ec2.internal' : `${region}.compute.internal`}`,
      localIpv4: ip,
      publicIpv4: undefined,
      publicHostname: undefined,
      mac: `0e:${[11, 12, 13, 14, 15].map((i) => seed[i]!.toString(16).padStart(2, '0')).join(':')}`,
      networkInterfaceId: `eni-0${hex(26, 16)}`,
      vpcId: `vpc-0${hex(42, 16)}`,
      vpcCidr: `10.${seed[8]! % 250}.0.0/16`,
      subnetId: `subnet-0${hex(48, 16)}`,
      subnetCidr: `10.${seed[8]! % 250}.${seed[9]! % 250}.0/24`,
      reservationId: `r-0${hex(32, 16)}`,
      securityGroups: [{ name: 'default', id: `sg-0${hex(38, 16)}` }],
      iam:
        honey === undefined
          ? null
          : {
              role: honey.role,
              instanceProfileArn: `arn:aws:iam::${account}:instance-profile/${honey.role}`,
              instanceProfileId: `AIPA${hex(40, 17).toUpperCase()}`,
            },
      instanceMetadataTags: 'disabled',
      tags: [],
      userData: null,
    },
    'guard.trap',
  );
}

/** The configured honey credentials, as if rotated at the top of every hour. */
function honeySource(
  honey: NonNullable<TrapConfig['honeyCredentials']>,
  now: () => number,
): CredentialSource {
  // Without a configured session token, one is made up once: a token that changed on every read
  // would give the trap away.
  const sessionToken = honey.token ?? `IQoJb3JpZ2luX2Vj${randomBytes(576).toString('base64')}`;
  return {
    get(): CredentialSet {
      const lastUpdated = Math.floor(now() / HOUR_MS) * HOUR_MS;
      return {
        accessKeyId: honey.accessKeyId,
        secretAccessKey: honey.secretAccessKey,
        sessionToken,
        lastUpdated,
        expiration: lastUpdated + HONEY_LIFETIME_MS,
      };
    },
  };
}

export function createTrap(config: TrapConfig, flavor: Flavor, hostname: string, now: () => number): Trap {
  const instance = trapInstance(config, hostname, now());
  const honey = config.honeyCredentials;
  const state: EmulatorState = {
    instance,
    settings: TRAP_SETTINGS,
    now,
    credentials: honey === undefined ? undefined : honeySource(honey, now),
  };
  const handler = createFlavorHandler(flavor, now);
  return {
    instance,
    answer(req) {
      return handler(req, state);
    },
  };
}
