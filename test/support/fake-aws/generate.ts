/**
 * A seeded, deterministic fleet generator: the same options always give the same fleet, so tests and
 * benches can build thousands of instances and assert exact counts.
 */
import {
  addInstance,
  emptyAccount,
  type FakeAccount,
  type FakeFleet,
  type FakeImage,
  type FakeLaunchTemplate,
  type FakeMetadataOptions,
  type FakeRegion,
  type FakeTemplateMetadataOptions,
  resolveTemplateVersion,
} from './model.js';

export interface GenerateFleetOptions {
  /** How many accounts (ids are derived from the seed) or the exact account ids. Default 1. */
  accounts?: number | string[];
  /** Region names each account has instances in. Default ['us-east-1']. */
  regions?: string[];
  /** Instances per account and region. Default 10. */
  instancesPerRegion?: number;
  /** PRNG seed. Default 1. */
  seed?: number;
  /** The role that can be assumed in every account. Default 'ImdsguardAudit'. */
  roleName?: string;
  /** Region names DescribeRegions lists; default: the `regions` plus a few more. */
  regionNames?: string[];
  /** Share of instances (0..1) with HttpTokens=required. Default 0.4. */
  requiredShare?: number;
  /** Share of instances with HttpEndpoint=disabled. Default 0.05. */
  disabledShare?: number;
  /** Share of instances launched by an Auto Scaling group. Default 0.3. */
  asgShare?: number;
  /** Share of instances with an instance profile. Default 0.6. */
  profileShare?: number;
  /** Max instances per reservation (1..n). Default 4. */
  maxReservationSize?: number;
}

/** mulberry32: a tiny, good-enough PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DEFAULT_EXTRA_REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-southeast-2'];
const INSTANCE_TYPES = ['t3.micro', 't3.large', 'm6i.large', 'c7g.xlarge', 'r6i.2xlarge'];
const BASE_TIME = Date.UTC(2025, 0, 1);

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0').slice(-width);
}

export function accountIdFor(index: number, seed: number): string {
  return String(
    100_000_000_000 + (((seed % 1000) * 1_000_003 + index * 10_101_011) % 899_999_999_999),
  ).padStart(12, '0');
}

export function generateFleet(options: GenerateFleetOptions = {}): FakeFleet {
  const seed = options.seed ?? 1;
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const regions = options.regions ?? ['us-east-1'];
  const perRegion = options.instancesPerRegion ?? 10;
  const roleName = options.roleName ?? 'ImdsguardAudit';
  const accountIds =
    typeof options.accounts === 'object'
      ? options.accounts
      : Array.from({ length: options.accounts ?? 1 }, (_, i) => accountIdFor(i, seed));
  const requiredShare = options.requiredShare ?? 0.4;
  const disabledShare = options.disabledShare ?? 0.05;
  const asgShare = options.asgShare ?? 0.3;
  const profileShare = options.profileShare ?? 0.6;
  const maxRes = Math.max(1, options.maxReservationSize ?? 4);
  const regionNames = options.regionNames ?? [...new Set([...regions, ...DEFAULT_EXTRA_REGIONS])];

  const fleet: FakeFleet = {
    managementAccountId: accountIds[0] ?? '000000000000',
    accounts: new Map(),
    regionNames,
    nextId: 1,
  };
  let counter = 0;
  const nextHex = (width: number) => {
    counter += 1;
    return hex(Math.floor(rand() * 0xfff), 3) + hex(counter, width - 3);
  };

  accountIds.forEach((accountId, ai) => {
    const account: FakeAccount = emptyAccount(accountId, regions, [roleName]);
    account.name = `acct-${ai}`;
    fleet.accounts.set(accountId, account);
    const profiles = ['web', 'batch', 'ci-runner', 'eks-node', 'admin'].map(
      (n) => `arn:aws:iam::${accountId}:instance-profile/${n}`,
    );
    // Each profile holds the role <name>-role, except 'batch', whose role was removed.
    for (const n of ['web', 'batch', 'ci-runner', 'eks-node', 'admin']) {
      account.instanceProfiles.set(n, { path: '/', roles: n === 'batch' ? [] : [`${n}-role`] });
    }
    regions.forEach((regionName, ri) => {
      const region = account.regions.get(regionName) as FakeRegion;
      if (ai % 3 === 1 && ri === 0) region.defaults = { httpTokens: 'required', httpPutResponseHopLimit: 2 };
      else if (ai % 3 === 2) region.defaults = { httpTokens: 'optional' };
      // Images: some with ImdsSupport v2.0.
      const images: FakeImage[] = [];
      for (let k = 0; k < 5; k++) {
        const img: FakeImage = {
          imageId: `ami-${nextHex(17)}`,
          name: `image-${ai}-${ri}-${k}`,
          ownerId: accountId,
          creationDate: new Date(BASE_TIME - (k + 1) * 86_400_000),
          imdsSupport: k % 2 === 0 ? 'v2.0' : undefined,
        };
        images.push(img);
        region.images.set(img.imageId, img);
      }
      // Launch templates: 1 per 100 instances, at least 2, at most 50; 1..3 versions each.
      const nTemplates = Math.min(50, Math.max(2, Math.ceil(perRegion / 100)));
      for (let t = 0; t < nTemplates; t++) {
        const nVersions = 1 + Math.floor(rand() * 3);
        const lt: FakeLaunchTemplate = {
          launchTemplateId: `lt-${nextHex(17)}`,
          launchTemplateName: `tmpl-${ai}-${ri}-${t}`,
          createTime: new Date(BASE_TIME - 30 * 86_400_000),
          defaultVersion: 1 + Math.floor(rand() * nVersions),
          versions: [],
        };
        for (let v = 1; v <= nVersions; v++) {
          const r = rand();
          let metadataOptions: FakeTemplateMetadataOptions | undefined;
          if (r < 0.4)
            metadataOptions = { httpTokens: 'required', httpEndpoint: 'enabled', httpPutResponseHopLimit: 1 };
          else if (r < 0.7)
            metadataOptions = { httpTokens: 'optional', httpEndpoint: 'enabled', httpPutResponseHopLimit: 1 };
          else if (r < 0.8) metadataOptions = { httpTokens: 'required', httpPutResponseHopLimit: 2 };
          lt.versions.push({
            versionNumber: v,
            createTime: new Date(BASE_TIME - (30 - v) * 86_400_000),
            data: {
              imageId: pick(images).imageId,
              instanceType: pick(INSTANCE_TYPES),
              iamInstanceProfileArn: rand() < 0.5 ? pick(profiles) : undefined,
              metadataOptions,
            },
          });
        }
        region.launchTemplates.push(lt);
      }
      // Launch configurations: two, one allowing v1.
      for (let c = 0; c < 2; c++) {
        region.launchConfigurations.push({
          name: `lc-${ai}-${ri}-${c}`,
          arn: `arn:aws:autoscaling:${regionName}:${accountId}:launchConfiguration:${nextHex(8)}:launchConfigurationName/lc-${ai}-${ri}-${c}`,
          createdTime: new Date(BASE_TIME - 90 * 86_400_000),
          imageId: pick(images).imageId,
          instanceType: pick(INSTANCE_TYPES),
          iamInstanceProfile: c === 0 ? 'web' : undefined,
          metadataOptions: c === 0 ? { httpTokens: 'required', httpEndpoint: 'enabled' } : undefined,
        });
      }
      // Auto Scaling groups: one per template (version $Default, $Latest or pinned), one per LC.
      region.launchTemplates.forEach((lt, t) => {
        const version = t % 3 === 0 ? '$Default' : t % 3 === 1 ? '$Latest' : String(lt.versions.length);
        const ref = {
          launchTemplateId: lt.launchTemplateId,
          launchTemplateName: lt.launchTemplateName,
          version,
        };
        region.autoScalingGroups.push({
          name: `asg-${ai}-${ri}-${t}`,
          arn: `arn:aws:autoscaling:${regionName}:${accountId}:autoScalingGroup:${nextHex(8)}:autoScalingGroupName/asg-${ai}-${ri}-${t}`,
          createdTime: new Date(BASE_TIME - 20 * 86_400_000),
          minSize: 0,
          maxSize: 100,
          desiredCapacity: 0,
          launchTemplate: t % 4 === 3 ? undefined : ref,
          mixedInstancesTemplate: t % 4 === 3 ? ref : undefined,
          instanceIds: [],
        });
      });
      region.launchConfigurations.forEach((lc, c) => {
        region.autoScalingGroups.push({
          name: `asg-lc-${ai}-${ri}-${c}`,
          arn: `arn:aws:autoscaling:${regionName}:${accountId}:autoScalingGroup:${nextHex(8)}:autoScalingGroupName/asg-lc-${ai}-${ri}-${c}`,
          createdTime: new Date(BASE_TIME - 60 * 86_400_000),
          minSize: 0,
          maxSize: 100,
          desiredCapacity: 0,
          launchConfigurationName: lc.name,
          instanceIds: [],
        });
      });

      // Instances, in reservations of 1..maxRes.
      let made = 0;
      while (made < perRegion) {
        const resSize = Math.min(perRegion - made, 1 + Math.floor(rand() * maxRes));
        const reservationId = `r-${nextHex(17)}`;
        const useAsg = rand() < asgShare && region.autoScalingGroups.length > 0;
        const asg = useAsg ? pick(region.autoScalingGroups) : undefined;
        const tplRef = asg?.launchTemplate ?? asg?.mixedInstancesTemplate;
        const template = tplRef
          ? region.launchTemplates.find((x) => x.launchTemplateId === tplRef.launchTemplateId)
          : undefined;
        const tv = template ? resolveTemplateVersion(template, tplRef?.version) : undefined;
        const lc = asg?.launchConfigurationName
          ? region.launchConfigurations.find((x) => x.name === asg.launchConfigurationName)
          : undefined;
        const stateRoll = rand();
        const state =
          stateRoll < 0.75
            ? 'running'
            : stateRoll < 0.93
              ? 'stopped'
              : stateRoll < 0.97
                ? 'pending'
                : 'terminated';
        for (let k = 0; k < resSize; k++) {
          const instanceId = `i-${nextHex(17)}`;
          const roll = rand();
          let opts: FakeMetadataOptions = {
            state: 'applied',
            httpTokens: roll < requiredShare ? 'required' : 'optional',
            httpEndpoint: rand() < disabledShare ? 'disabled' : 'enabled',
            httpPutResponseHopLimit: rand() < 0.1 ? 2 : 1,
            httpProtocolIpv6: rand() < 0.05 ? 'enabled' : 'disabled',
            instanceMetadataTags: rand() < 0.1 ? 'enabled' : 'disabled',
          };
          if (tv?.data.metadataOptions) {
            const m = tv.data.metadataOptions;
            opts = {
              ...opts,
              httpTokens: m.httpTokens ?? opts.httpTokens,
              httpEndpoint: m.httpEndpoint ?? opts.httpEndpoint,
              httpPutResponseHopLimit: m.httpPutResponseHopLimit ?? opts.httpPutResponseHopLimit,
            };
          }
          if (rand() < 0.01) opts.state = 'pending';
          const tags: Record<string, string> = { Name: `host-${ai}-${ri}-${made + k}` };
          if (rand() < 0.3) tags['env'] = pick(['prod', 'staging', 'dev']);
          if (opts.httpPutResponseHopLimit > 1 && rand() < 0.5) tags['eks:cluster-name'] = 'main';
          if (asg) tags['aws:autoscaling:groupName'] = asg.name;
          if (template && tv) {
            tags['aws:ec2launchtemplate:id'] = template.launchTemplateId;
            tags['aws:ec2launchtemplate:version'] = String(tv.versionNumber);
          }
          const profile =
            tv?.data.iamInstanceProfileArn ?? (rand() < profileShare ? pick(profiles) : undefined);
          addInstance(region, accountId, {
            instanceId,
            reservationId,
            instanceType: tv?.data.instanceType ?? lc?.instanceType ?? pick(INSTANCE_TYPES),
            imageId: tv?.data.imageId ?? lc?.imageId ?? pick(images).imageId,
            state,
            launchTime: new Date(BASE_TIME + Math.floor(rand() * 300) * 86_400_000),
            instanceProfileArn: profile,
            tags,
            metadataOptions: opts,
          });
          if (asg && state !== 'terminated') asg.instanceIds.push(instanceId);
        }
        made += resSize;
      }
      for (const asg of region.autoScalingGroups) asg.desiredCapacity = asg.instanceIds.length;
    });
  });
  return fleet;
}
