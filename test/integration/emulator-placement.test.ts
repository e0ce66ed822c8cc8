import { afterEach, describe, expect, it } from 'vitest';
import { MAPPED_AWS_REGIONS } from '../../src/emulator/flavors/placement.js';
import { defaultInstance, type InstanceModel } from '../../src/emulator/index.js';
import {
  ALI_TOKEN,
  ALI_TTL,
  AZURE,
  GOOGLE,
  ORACLE,
  raw,
  startEmulator,
  stopEmulators,
} from '../support/emulator-http.js';

/**
 * Each non-AWS flavour writes where the instance runs, and what it is, in its own cloud's format, and
 * no AWS region, zone or instance type leaks into its answers.
 */

afterEach(stopEmulators);

function instanceIn(zone: string, instanceType = 't3.micro'): InstanceModel {
  const region = zone.slice(0, -1);
  return {
    ...defaultInstance(),
    region,
    availabilityZone: zone,
    instanceType,
    hostname: `ip-172-31-5-10.${region}.compute.internal`,
  };
}

async function body(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await raw(url, { headers });
  expect(r.status, `${url}: ${r.body}`).toBe(200);
  return r.body;
}

/** Everything a flavour serves about the instance, as one string. */
async function dump(flavor: string, url: string): Promise<string> {
  switch (flavor) {
    case 'gcp':
      return body(`${url}/computeMetadata/v1/?recursive=true`, GOOGLE);
    case 'azure':
      return body(`${url}/metadata/instance?api-version=2021-02-01`, AZURE);
    case 'digitalocean':
      return body(`${url}/metadata/v1.json`);
    case 'oci':
      return `${await body(`${url}/opc/v2/instance/`, ORACLE)}${await body(`${url}/opc/v2/vnics/`, ORACLE)}`;
    default:
      throw new Error(flavor);
  }
}

describe('placement in each cloud format', () => {
  it('gcp: projects/N/zones/ZONE, the zone in the hostname, a GCP machine type', async () => {
    const e = await startEmulator({ flavor: 'gcp' });
    const base = `${e.url}/computeMetadata/v1/instance`;
    const project = await body(`${e.url}/computeMetadata/v1/project/numeric-project-id`, GOOGLE);
    expect(await body(`${base}/zone`, GOOGLE)).toBe(`projects/${project}/zones/us-central1-a`);
    expect(await body(`${base}/hostname`, GOOGLE)).toMatch(
      /^[a-z0-9-]+\.us-central1-a\.c\.[a-z0-9-]+\.internal$/,
    );
    expect(await body(`${base}/machine-type`, GOOGLE)).toBe(`projects/${project}/machineTypes/e2-micro`);
  });

  it('azure: location eastus, zone 1, a Standard_ VM size', async () => {
    const e = await startEmulator({ flavor: 'azure' });
    const doc = JSON.parse(await body(`${e.url}/metadata/instance/compute?api-version=2021-02-01`, AZURE));
    expect(doc).toMatchObject({ location: 'eastus', zone: '1', vmSize: 'Standard_B1s' });
    expect(
      await body(`${e.url}/metadata/instance/compute/location?api-version=2021-02-01&format=text`, AZURE),
    ).toBe('eastus');
  });

  it('digitalocean: a region slug such as nyc3, in the document and the path tree', async () => {
    const e = await startEmulator({ flavor: 'digitalocean' });
    expect(JSON.parse(await body(`${e.url}/metadata/v1.json`)).region).toBe('nyc3');
    expect(await body(`${e.url}/metadata/v1/region`)).toBe('nyc3');
  });

  it('oci: iad with us-ashburn-1, an availability domain, regionInfo, OCIDs with the region', async () => {
    const e = await startEmulator({ flavor: 'oci' });
    const doc = JSON.parse(await body(`${e.url}/opc/v2/instance/`, ORACLE));
    expect(doc).toMatchObject({
      region: 'iad',
      canonicalRegionName: 'us-ashburn-1',
      ociAdName: 'iad-ad-1',
      regionInfo: { realmKey: 'oc1', regionKey: 'IAD', regionIdentifier: 'us-ashburn-1' },
    });
    expect(doc.availabilityDomain).toMatch(/^[A-Z][a-z]{3}:US-ASHBURN-AD-1$/);
    expect(doc.id).toMatch(/^ocid1\.instance\.oc1\.iad\.[a-z0-9]+$/);
    expect(await body(`${e.url}/opc/v2/instance/region`, ORACLE)).toBe('iad');
    const vnics = JSON.parse(await body(`${e.url}/opc/v2/vnics/`, ORACLE));
    expect(vnics[0].vnicId).toMatch(/^ocid1\.vnic\.oc1\.iad\./);
  });

  it('alibaba: region and zone ids, an ecs. instance type, and its own identity document', async () => {
    const e = await startEmulator({ flavor: 'alibaba', instance: instanceIn('eu-central-1b', 'm5.xlarge') });
    const put = await raw(`${e.url}/latest/api/token`, { method: 'PUT', headers: { [ALI_TTL]: '60' } });
    expect(put.status).toBe(200);
    const h = { [ALI_TOKEN]: put.body };
    const md = `${e.url}/latest/meta-data`;
    expect(await body(`${md}/region-id`, h)).toBe('eu-central-1');
    expect(await body(`${md}/zone-id`, h)).toBe('eu-central-1b');
    expect(await body(`${md}/instance/instance-type`, h)).toBe('ecs.g7.xlarge');
    const doc = JSON.parse(await body(`${e.url}/latest/dynamic/instance-identity/document`, h));
    expect(doc).toMatchObject({
      'region-id': 'eu-central-1',
      'zone-id': 'eu-central-1b',
      'instance-type': 'ecs.g7.xlarge',
      'instance-id': await body(`${md}/instance-id`, h),
      'private-ipv4': defaultInstance().localIpv4,
    });
    expect(
      Object.keys(doc).some((k) => /[A-Z]/.test(k)),
      'AWS camelCase keys',
    ).toBe(false);
    expect((await body(`${e.url}/latest/dynamic/instance-identity/pkcs7`, h)).length).toBeGreaterThan(100);
  });

  it.each([
    [
      'eu-west-1b',
      { gcp: 'europe-west1-c', azure: 'northeurope', zone: '2', digitalocean: 'lon1', oci: 'uk-london-1' },
    ],
    [
      'ap-northeast-1c',
      { gcp: 'asia-northeast1-c', azure: 'japaneast', zone: '3', digitalocean: 'sgp1', oci: 'ap-tokyo-1' },
    ],
    // A region the table does not know maps like us-east-1; the zone letter still picks the zone.
    ['me-south-1b', { gcp: 'us-central1-b', azure: 'eastus', zone: '2', digitalocean: 'nyc3', oci: 'iad' }],
  ])('an instance in %s', async (zone, want) => {
    const instance = instanceIn(zone);
    const gcp = await startEmulator({ flavor: 'gcp', instance });
    expect(await body(`${gcp.url}/computeMetadata/v1/instance/zone`, GOOGLE)).toMatch(
      new RegExp(`/zones/${want.gcp}$`),
    );
    const azure = await startEmulator({ flavor: 'azure', instance });
    const compute = JSON.parse(
      await body(`${azure.url}/metadata/instance/compute?api-version=2021-02-01`, AZURE),
    );
    expect(compute).toMatchObject({ location: want.azure, zone: want.zone });
    const doE = await startEmulator({ flavor: 'digitalocean', instance });
    expect(await body(`${doE.url}/metadata/v1/region`)).toBe(want.digitalocean);
    const oci = await startEmulator({ flavor: 'oci', instance });
    expect(await body(`${oci.url}/opc/v2/instance/region`, ORACLE)).toBe(want.oci);
  });

  it('the table covers the common AWS regions', () => {
    expect(MAPPED_AWS_REGIONS).toEqual(
      expect.arrayContaining(['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-southeast-1']),
    );
  });
});

describe('no AWS leftovers in the other flavours', () => {
  // Every mapped region, in each of its zones a to c, and a larger instance type.
  const zones = MAPPED_AWS_REGIONS.flatMap((r) => ['a', 'b', 'c'].map((z) => `${r}${z}`));

  it.each(['gcp', 'azure', 'digitalocean', 'oci'])(
    '%s never shows the AWS region, zone or instance type',
    async (flavor) => {
      for (const zone of zones) {
        const instance = instanceIn(zone, 'm6i.2xlarge');
        const e = await startEmulator({ flavor: flavor as 'gcp', instance });
        const text = await dump(flavor, e.url);
        for (const aws of [instance.availabilityZone, instance.instanceType, 'm6i', 'compute.internal']) {
          expect(text, `${flavor} in ${zone}`).not.toContain(aws);
        }
        // The AWS region may only appear where the other cloud has a region of the same name (none of these do).
        expect(text, `${flavor} in ${zone}`).not.toMatch(
          new RegExp(`"${instance.region}"|/${instance.region}/`),
        );
        await stopEmulators();
      }
    },
  );
});
