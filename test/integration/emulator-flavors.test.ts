import { afterEach, describe, expect, it } from 'vitest';
import { defaultInstance } from '../../src/emulator/index.js';
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

afterEach(stopEmulators);

describe('GCP flavour', () => {
  it('needs Metadata-Flavor: Google (403 without) and answers with it', async () => {
    const e = await startEmulator({ flavor: 'gcp' });
    const without = await raw(`${e.url}/computeMetadata/v1/instance/id`);
    expect(without.status).toBe(403);
    expect(without.body).toContain('Missing Metadata-Flavor:Google header');
    const wrong = await raw(`${e.url}/computeMetadata/v1/instance/id`, {
      headers: { 'metadata-flavor': 'Amazon' },
    });
    expect(wrong.status).toBe(403);
    const ok = await raw(`${e.url}/computeMetadata/v1/instance/id`, { headers: GOOGLE });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatch(/^\d{19}$/);
    expect(ok.headers['metadata-flavor']).toBe('Google');
    expect(ok.headers['connection']).toBe('close');
  });

  it('refuses X-Forwarded-For with 403 even with the header', async () => {
    const e = await startEmulator({ flavor: 'gcp' });
    const r = await raw(`${e.url}/computeMetadata/v1/instance/id`, {
      headers: { ...GOOGLE, 'x-forwarded-for': '10.0.0.9' },
    });
    expect(r.status).toBe(403);
  });

  it('serves listings, the project, recursive JSON and 404 for unknown paths', async () => {
    const e = await startEmulator({ flavor: 'gcp' });
    const list = await raw(`${e.url}/computeMetadata/v1/instance/`, { headers: GOOGLE });
    expect(list.body.split('\n')).toEqual(
      expect.arrayContaining(['service-accounts/', 'zone', 'hostname', 'id']),
    );
    const project = await raw(`${e.url}/computeMetadata/v1/project/?recursive=true`, { headers: GOOGLE });
    expect(JSON.parse(project.body)).toMatchObject({ numericProjectId: defaultInstance().accountId });
    const redirect = await raw(`${e.url}/computeMetadata/v1/instance`, { headers: GOOGLE });
    expect(redirect.status).toBe(301);
    expect(redirect.headers['location']).toBe('/computeMetadata/v1/instance/');
    expect((await raw(`${e.url}/computeMetadata/v1/instance/nope`, { headers: GOOGLE })).status).toBe(404);
  });

  it('serves service-account OAuth and identity tokens', async () => {
    const e = await startEmulator({ flavor: 'gcp' });
    const base = `${e.url}/computeMetadata/v1/instance/service-accounts`;
    expect((await raw(`${base}/`, { headers: GOOGLE })).body).toContain('default/');
    const tok = await raw(`${base}/default/token`, { headers: GOOGLE });
    expect(tok.status).toBe(200);
    expect(tok.headers['content-type']).toBe('application/json');
    const parsed = JSON.parse(tok.body) as Record<string, unknown>;
    expect(parsed['token_type']).toBe('Bearer');
    expect(parsed['expires_in']).toBe(3599);
    expect(String(parsed['access_token'])).toMatch(/^ya29\./);
    expect((await raw(`${base}/default/identity`, { headers: GOOGLE })).status).toBe(400);
    const id = await raw(`${base}/default/identity?audience=https://example.test`, { headers: GOOGLE });
    expect(id.body.split('.')).toHaveLength(3);
    const email = (await raw(`${base}/default/email`, { headers: GOOGLE })).body;
    expect(email).toMatch(/@emulated-\d{12}\.iam\.gserviceaccount\.com$/);
  });
});

describe('Azure flavour', () => {
  it('needs Metadata: true (400 without) and an api-version (400 without or unknown)', async () => {
    const e = await startEmulator({ flavor: 'azure' });
    const noHeader = await raw(`${e.url}/metadata/instance?api-version=2021-02-01`);
    expect(noHeader.status).toBe(400);
    expect(JSON.parse(noHeader.body).error).toContain('Required metadata header not specified');
    const noVersion = await raw(`${e.url}/metadata/instance`, { headers: AZURE });
    expect(noVersion.status).toBe(400);
    expect(JSON.parse(noVersion.body).error).toContain('api-version was not specified');
    expect((await raw(`${e.url}/metadata/instance?api-version=1999-01-01`, { headers: AZURE })).status).toBe(
      400,
    );
    const ok = await raw(`${e.url}/metadata/instance?api-version=2021-02-01`, { headers: AZURE });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).compute.tagsList).toEqual([
      { name: 'Name', value: 'imdsguard-demo' },
      { name: 'Environment', value: 'test' },
    ]);
    expect((await raw(`${e.url}/metadata/versions`, { headers: AZURE })).status).toBe(200);
  });

  it('refuses X-Forwarded-For', async () => {
    const e = await startEmulator({ flavor: 'azure' });
    const r = await raw(`${e.url}/metadata/instance?api-version=2021-02-01`, {
      headers: { ...AZURE, 'x-forwarded-for': '10.0.0.9' },
    });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toContain('X-Forwarded-For');
  });

  it('serves leaves with format=text only', async () => {
    const e = await startEmulator({ flavor: 'azure' });
    const url = `${e.url}/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01`;
    expect((await raw(url, { headers: AZURE })).status).toBe(400);
    const t = await raw(`${url}&format=text`, { headers: AZURE });
    expect(t.status).toBe(200);
    expect(t.body).toBe(defaultInstance().localIpv4);
    expect(
      (await raw(`${e.url}/metadata/instance/nope?api-version=2021-02-01`, { headers: AZURE })).status,
    ).toBe(404);
  });

  it('serves managed-identity tokens and needs a resource', async () => {
    const e = await startEmulator({ flavor: 'azure' });
    const base = `${e.url}/metadata/identity/oauth2/token?api-version=2018-02-01`;
    const missing = await raw(base, { headers: AZURE });
    expect(missing.status).toBe(400);
    expect(JSON.parse(missing.body).error).toBe('invalid_request');
    const r = await raw(`${base}&resource=${encodeURIComponent('https://management.azure.com/')}`, {
      headers: AZURE,
    });
    expect(r.status).toBe(200);
    const tok = JSON.parse(r.body) as Record<string, string>;
    expect(tok['token_type']).toBe('Bearer');
    expect(tok['resource']).toBe('https://management.azure.com/');
    expect(Number(tok['expires_on'])).toBeGreaterThan(Date.now() / 1000);
    const noRole = await startEmulator({ flavor: 'azure', instance: { ...defaultInstance(), iam: null } });
    const none = await raw(`${noRole.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x`, {
      headers: AZURE,
    });
    expect(none.status).toBe(400);
  });
});

describe('DigitalOcean flavour', () => {
  it('needs no header and serves the tree and v1.json', async () => {
    const e = await startEmulator({ flavor: 'digitalocean' });
    const list = await raw(`${e.url}/metadata/v1/`);
    expect(list.status).toBe(200);
    expect(list.body.split('\n')).toEqual(
      expect.arrayContaining(['id', 'hostname', 'interfaces/', 'user-data']),
    );
    expect((await raw(`${e.url}/metadata/v1/interfaces/private/0/ipv4/address`)).body).toBe(
      defaultInstance().localIpv4,
    );
    const all = JSON.parse((await raw(`${e.url}/metadata/v1.json`)).body) as Record<string, unknown>;
    expect(String(all['droplet_id'])).toBe((await raw(`${e.url}/metadata/v1/id`)).body);
    // DigitalOcean does not refuse forwarding headers.
    expect((await raw(`${e.url}/metadata/v1/id`, { headers: { 'x-forwarded-for': '1.2.3.4' } })).status).toBe(
      200,
    );
    expect((await raw(`${e.url}/metadata/v1/nope`)).status).toBe(404);
  });
});

describe('OCI flavour', () => {
  it('needs Authorization: Bearer Oracle on /opc/v2 (401 without)', async () => {
    const e = await startEmulator({ flavor: 'oci' });
    expect((await raw(`${e.url}/opc/v2/instance/`)).status).toBe(401);
    const ok = await raw(`${e.url}/opc/v2/instance/`, { headers: ORACLE });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).id).toMatch(/^ocid1\.instance\.oc1\./);
    // us-east-1's counterpart is Ashburn, which OCI writes as iad (docs/emulator.md).
    expect((await raw(`${e.url}/opc/v2/instance/region`, { headers: ORACLE })).body).toBe('iad');
    expect(JSON.parse((await raw(`${e.url}/opc/v2/vnics/`, { headers: ORACLE })).body)[0].privateIp).toBe(
      defaultInstance().localIpv4,
    );
  });

  it('with v1 disabled (tokens=required): /opc/v1 is 404 and forwarding headers are refused', async () => {
    const e = await startEmulator({ flavor: 'oci' });
    expect((await raw(`${e.url}/opc/v1/instance/`)).status).toBe(200);
    expect(
      (await raw(`${e.url}/opc/v2/instance/`, { headers: { ...ORACLE, forwarded: 'for=1.2.3.4' } })).status,
    ).toBe(200);
    e.setSettings({ tokens: 'required' });
    expect((await raw(`${e.url}/opc/v1/instance/`)).status).toBe(404);
    for (const h of ['forwarded', 'x-forwarded-for', 'x-forwarded-host']) {
      const r = await raw(`${e.url}/opc/v2/instance/`, { headers: { ...ORACLE, [h]: 'x' } });
      expect(r.status, h).toBe(403);
    }
  });
});

describe('Alibaba flavour', () => {
  it('serves EC2-style paths and its own token scheme', async () => {
    const e = await startEmulator({ flavor: 'alibaba' });
    const md = await raw(`${e.url}/latest/meta-data/`);
    expect(md.body.split('\n')).toEqual(
      expect.arrayContaining(['instance-id', 'region-id', 'zone-id', 'ram/']),
    );
    const put = await raw(`${e.url}/latest/api/token`, { method: 'PUT', headers: { [ALI_TTL]: '120' } });
    expect(put.status).toBe(200);
    expect(put.headers[ALI_TTL]).toBe('120');
    const get = await raw(`${e.url}/latest/meta-data/region-id`, { headers: { [ALI_TOKEN]: put.body } });
    expect(get.status).toBe(200);
    expect(get.body).toBe(defaultInstance().region);
    expect(get.headers[ALI_TTL]).toBe('120');
    // The AWS header names mean nothing here.
    const awsPut = await raw(`${e.url}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '120' },
    });
    expect(awsPut.status).toBe(400);
    const creds = JSON.parse(
      (await raw(`${e.url}/latest/meta-data/ram/security-credentials/imdsguard-demo-role`)).body,
    ) as Record<string, string>;
    expect(Object.keys(creds).sort()).toEqual(
      ['AccessKeyId', 'AccessKeySecret', 'Code', 'Expiration', 'LastUpdated', 'SecurityToken'].sort(),
    );
    expect(creds['AccessKeyId']).toMatch(/^STS\./);
  });

  it('hardened mode (tokens=required): 401 without a token or with a bad one; 400 for a bad TTL', async () => {
    const e = await startEmulator({ flavor: 'alibaba', settings: { tokens: 'required' } });
    expect((await raw(`${e.url}/latest/meta-data/instance-id`)).status).toBe(401);
    expect(
      (await raw(`${e.url}/latest/meta-data/instance-id`, { headers: { [ALI_TOKEN]: 'bogus' } })).status,
    ).toBe(401);
    expect(
      (await raw(`${e.url}/latest/api/token`, { method: 'PUT', headers: { [ALI_TTL]: '0' } })).status,
    ).toBe(400);
    expect((await raw(`${e.url}/latest/api/token`)).status).toBe(405);
  });
});

describe.each(['aws', 'gcp', 'azure', 'digitalocean', 'oci', 'alibaba'] as const)('%s flavour', (flavor) => {
  it('answers 403 to everything when the endpoint is disabled, with Connection: close', async () => {
    const e = await startEmulator({ flavor, settings: { endpoint: 'disabled' } });
    const headers = { ...GOOGLE, ...AZURE, ...ORACLE };
    for (const path of [
      '/',
      '/latest/meta-data/',
      '/computeMetadata/v1/',
      '/metadata/instance?api-version=2021-02-01',
      '/opc/v2/instance/',
    ]) {
      const r = await raw(`${e.url}${path}`, { headers });
      expect(r.status, path).toBe(403);
      expect(r.headers['connection']).toBe('close');
    }
  });
});
