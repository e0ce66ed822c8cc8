import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createFlavorHandler } from '../../src/emulator/flavors/index.js';
import { instanceSchema } from '../../src/emulator/instance.js';
import type { EmuRequest } from '../../src/emulator/types.js';
import { createTrap, regionCode, trapInstance } from '../../src/guard/trap/index.js';

/** The trap answers with the emulator's handlers, for an instance derived from the host name. */

const NOW = Date.parse('2026-03-01T12:34:56Z');
const now = () => NOW;
const trapConfig = (trap: Record<string, unknown> = {}) =>
  parseConfig({ guard: { mode: 'trap', trap } }).guard.trap;
const get = (path: string, headers: Record<string, string> = {}): EmuRequest => ({
  method: 'GET',
  path,
  query: new URLSearchParams(),
  headers,
});

describe('the trap instance', () => {
  it('is a valid emulator instance, stable per host name and different between hosts', () => {
    const a = trapInstance(trapConfig(), 'web-1', NOW);
    expect(instanceSchema.safeParse(a).success).toBe(true);
    expect(trapInstance(trapConfig(), 'web-1', NOW)).toEqual(a);
    const b = trapInstance(trapConfig(), 'web-2', NOW);
    expect(b.instanceId).not.toBe(a.instanceId);
    expect(b.localIpv4).not.toBe(a.localIpv4);
    expect(a.iam).toBeNull();
    expect(a.userData).toBeNull();
  });

  it('takes the configured instance id and region', () => {
    const i = trapInstance(
      trapConfig({ instanceId: 'i-0123456789abcdef0', region: 'ap-southeast-2' }),
      'h',
      NOW,
    );
    expect(i).toMatchObject({ instanceId: 'i-0123456789abcdef0', region: 'ap-southeast-2' });
    expect(i.availabilityZone).toMatch(/^ap-southeast-2[abc]$/);
    expect(i.availabilityZoneId).toMatch(/^apse2-az\d$/);
  });

  it('names AZ ids as AWS does', () => {
    expect(regionCode('us-east-1')).toBe('use1');
    expect(regionCode('eu-central-1')).toBe('euc1');
    expect(regionCode('us-gov-west-1')).toBe('usgw1');
    expect(regionCode('ap-northeast-3')).toBe('apne3');
  });
});

describe('trap answers', () => {
  it('are the emulator handler answers for the same instance, byte for byte', () => {
    const trap = createTrap(trapConfig(), 'aws', 'web-1', now);
    const emu = createFlavorHandler('aws', now);
    const state = {
      instance: trap.instance,
      settings: { tokens: 'optional' as const, endpoint: 'enabled' as const, hopLimit: 1 },
      now,
      credentials: undefined,
    };
    for (const path of [
      '/',
      '/latest/meta-data/',
      '/latest/meta-data/instance-id',
      '/latest/meta-data/placement/availability-zone',
      '/latest/dynamic/instance-identity/document',
      '/latest/user-data',
      '/latest/meta-data/iam/',
      '/latest/meta-data/nope',
    ]) {
      expect(trap.answer(get(path)), path).toEqual(emu(get(path), state));
    }
  });

  it('serve honey credentials with a session token that does not change between reads', () => {
    const honey = {
      role: 'prod-admin',
      accessKeyId: 'ASIAHONEYTOKEN1234567',
      secretAccessKey: 'honey-secret-xyz-123',
    };
    const trap = createTrap(trapConfig({ honeyCredentials: honey }), 'aws', 'web-1', now);
    expect(trap.answer(get('/latest/meta-data/iam/security-credentials/')).body).toBe('prod-admin');
    const read = () =>
      JSON.parse(trap.answer(get('/latest/meta-data/iam/security-credentials/prod-admin')).body);
    const a = read();
    expect(a).toMatchObject({
      Code: 'Success',
      Type: 'AWS-HMAC',
      AccessKeyId: honey.accessKeyId,
      SecretAccessKey: honey.secretAccessKey,
      LastUpdated: '2026-03-01T12:00:00Z',
      Expiration: '2026-03-01T18:00:00Z',
    });
    expect(read().Token).toBe(a.Token);
  });

  it('issue tokens in standard base64 that the trap then accepts, and refuse forged ones', () => {
    const trap = createTrap(trapConfig(), 'aws', 'web-1', now);
    const put = trap.answer({
      method: 'PUT',
      path: '/latest/api/token',
      query: new URLSearchParams(),
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatch(/^AQAEA[A-Za-z0-9+/]+={0,2}$/);
    expect(trap.answer(get('/latest/meta-data/', { 'x-aws-ec2-metadata-token': put.body })).status).toBe(200);
    expect(trap.answer(get('/latest/meta-data/', { 'x-aws-ec2-metadata-token': 'forged' })).status).toBe(401);
  });

  it('PUT on a data path gets 405, as on IMDS', () => {
    const trap = createTrap(trapConfig(), 'aws', 'web-1', now);
    const a = trap.answer({ ...get('/latest/meta-data/'), method: 'PUT' });
    expect(a.status).toBe(405);
  });
});
