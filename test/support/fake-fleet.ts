/**
 * Small fleets built by hand for fake-aws: one account, the regions asked for, instances and launch
 * templates with the settings a test names, and the in-process CLI pointed at them.
 */
import { type RunResult, runInProcess } from './cli.js';
import {
  addInstance,
  allInstances,
  emptyAccount,
  type FakeAws,
  type FakeFleet,
  type FakeInstance,
  type FakeLaunchTemplate,
  type FakeMetadataOptions,
  type FakeRegion,
  fakeCredentialsEnv,
} from './fake-aws/index.js';

export const ACCOUNT = '111111111111';

export function metadata(o: Partial<FakeMetadataOptions> = {}): FakeMetadataOptions {
  return {
    state: 'applied',
    httpTokens: 'optional',
    httpEndpoint: 'enabled',
    httpPutResponseHopLimit: 1,
    httpProtocolIpv6: 'disabled',
    instanceMetadataTags: 'disabled',
    ...o,
  };
}

/** Instance number `k`, running, with these metadata options: its ids (i-/r- and `k` in hex) and Name tag follow `k`. */
export function numberedInstance(
  k: number,
  o: Partial<FakeMetadataOptions> = {},
  extra: Partial<FakeInstance> = {},
): FakeInstance {
  const hex = k.toString(16).padStart(17, '0');
  return {
    instanceId: `i-${hex}`,
    reservationId: `r-${hex}`,
    instanceType: 't3.micro',
    imageId: 'ami-0123456789abcdef0',
    state: 'running',
    launchTime: new Date(Date.UTC(2025, 0, 1)),
    tags: { Name: `host-${k}` },
    metadataOptions: metadata(o),
    ...extra,
  };
}

let seq = 0;

/** A running instance with these metadata options (the next number of this test file). */
export function fakeInstance(
  o: Partial<FakeMetadataOptions> = {},
  extra: Partial<FakeInstance> = {},
): FakeInstance {
  seq += 1;
  return numberedInstance(seq, o, extra);
}

/** A launch template with one version whose HttpTokens is `tokens` (optional: IMDSv1 launches). */
export function fakeTemplate(id: string, name: string, tokens: 'optional' | 'required'): FakeLaunchTemplate {
  const created = new Date(Date.UTC(2025, 0, 1));
  return {
    launchTemplateId: id,
    launchTemplateName: name,
    createTime: created,
    defaultVersion: 1,
    versions: [
      {
        versionNumber: 1,
        createTime: created,
        data: { imageId: 'ami-0123456789abcdef0', metadataOptions: { httpTokens: tokens } },
      },
    ],
  };
}

/** One account (ACCOUNT) with these regions, each filled by `build`. */
export function handFleet(regions: readonly string[], build: (region: FakeRegion) => void): FakeFleet {
  const account = emptyAccount(ACCOUNT, regions);
  for (const r of regions) build(account.regions.get(r) as FakeRegion);
  return {
    managementAccountId: ACCOUNT,
    accounts: new Map([[ACCOUNT, account]]),
    regionNames: [...regions],
    nextId: 1,
  };
}

export function fakeRegion(aws: FakeAws, region: string): FakeRegion {
  return aws.fleet.accounts.get(ACCOUNT)?.regions.get(region) as FakeRegion;
}

/** Adds instances to a region of ACCOUNT. */
export function add(region: FakeRegion, ...instances: FakeInstance[]): void {
  for (const i of instances) addInstance(region, ACCOUNT, i);
}

/** Every instance's metadata options by id, without the pending/applied state AWS moves by itself. */
export function metadataSnapshot(aws: FakeAws): Record<string, Omit<FakeMetadataOptions, 'state'>> {
  const out: Record<string, Omit<FakeMetadataOptions, 'state'>> = {};
  for (const { instance: i } of allInstances(aws.fleet)) {
    const { state: _s, ...rest } = i.metadataOptions;
    out[i.instanceId] = { ...rest };
  }
  return out;
}

/**
 * `imdsguard fleet ARGS --endpoint-url <aws> --regions <regions> --format json` in-process, in `cwd`,
 * not stopped unless `opts.shutdown` settles; `doc` is the parsed JSON document when stdout holds one.
 */
export async function fleetCli<D = Record<string, unknown>>(
  aws: FakeAws,
  regions: readonly string[],
  cwd: string,
  args: string[],
  opts: { shutdown?: Promise<string> } = {},
): Promise<RunResult & { doc: D | null }> {
  const r = await runInProcess(
    ['fleet', ...args, '--endpoint-url', aws.url, '--regions', regions.join(','), '--format', 'json'],
    { env: fakeCredentialsEnv(regions[0]), cwd, shutdown: opts.shutdown ?? new Promise<string>(() => {}) },
  );
  return { ...r, doc: r.stdout.trim().startsWith('{') ? (JSON.parse(r.stdout) as D) : null };
}
