import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  defaultInstance,
  formatIssuePath,
  loadInstanceFile,
  parseInstance,
} from '../../src/emulator/index.js';
import { type ImdsguardError, isImdsguardError } from '../../src/errors.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

function failure(fn: () => unknown): ImdsguardError {
  try {
    fn();
  } catch (err) {
    if (isImdsguardError(err)) return err;
    throw err;
  }
  throw new Error('expected an ImdsguardError');
}

describe('instance model', () => {
  it('the default instance is valid and has a role, tags and user data', () => {
    const i = parseInstance({});
    expect(i).toEqual(defaultInstance());
    expect(i.iam?.role).toBe('imdsguard-demo-role');
    expect(i.tags.length).toBeGreaterThan(0);
    expect(i.userData).not.toBeNull();
  });

  it('defaultInstance returns independent copies', () => {
    const a = defaultInstance();
    a.tags.push({ key: 'x', value: 'y' });
    expect(defaultInstance().tags).toHaveLength(2);
  });

  it('formats issue paths as iam.role and tags[2].key', () => {
    expect(formatIssuePath(['iam', 'role'])).toBe('iam.role');
    expect(formatIssuePath(['tags', 2, 'key'])).toBe('tags[2].key');
    expect(formatIssuePath([])).toBe('(top level)');
  });

  it.each([
    [{ iam: { role: 42 } }, 'iam.role: must be a string, got a number'],
    [
      { iam: { role: 'ok', rotateAfterSeconds: 7200, credentialLifetimeSeconds: 3600 } },
      'iam.rotateAfterSeconds: must be less than credentialLifetimeSeconds',
    ],
    [
      {
        tags: [
          { key: 'a', value: 'b' },
          { key: 'c', value: 'd' },
          { key: 'has space', value: 'x' },
        ],
      },
      'tags[2].key: must be 1..128 of letters',
    ],
    [{ tags: [{ key: 'a' }] }, 'tags[0].value: is required'],
    [{ instanceId: 'i-123' }, 'instanceId: must look like i-0123456789abcdef0'],
    [{ localIpv4: '10.0.0.300' }, 'localIpv4: must be an IPv4 address'],
    [{ mac: '0E:1A:2B:3C:4D:5E' }, 'mac: must be a lower-case MAC'],
    [{ instanceMetadataTags: 'on' }, 'instanceMetadataTags: must be one of "enabled", "disabled"'],
    [{ securityGroups: [] }, 'securityGroups: must have at least 1 item(s)'],
    [{ launchTime: 'yesterday' }, 'launchTime: must be an ISO 8601 date-time'],
    [{ colour: 'red' }, 'colour: unknown key "colour"'],
    [{ iam: { role: 'r', extra: 1 } }, 'iam.extra: unknown key "extra"'],
    [{ publicIpv4: undefined, publicHostname: 'x.example' }, 'publicHostname: needs publicIpv4 as well'],
  ])('names the bad field: %j', (input, message) => {
    const err = failure(() => parseInstance(input, 'file.yaml'));
    expect(err.code).toBe('IMDSGUARD_E_INSTANCE_FILE');
    expect(err.message).toContain(`file.yaml: ${message}`);
  });

  it('refuses a file that is not an object', () => {
    expect(failure(() => parseInstance([1, 2], 'f')).message).toBe(
      'f: (top level): must be an object, got an array',
    );
  });

  it('never echoes the bad value (it could be a secret)', () => {
    const err = failure(() => parseInstance({ iam: { role: 'AKIA-super/secret value!' } }));
    expect(err.message).not.toContain('super');
  });

  it('loads a YAML file over the default instance', () => {
    const i = loadInstanceFile(join(FIXTURES, 'instance-valid.yaml'));
    expect(i.instanceId).toBe('i-0123456789abcdef0');
    expect(i.region).toBe('eu-west-1');
    expect(i.iam).toMatchObject({
      role: 'web-server',
      rotateAfterSeconds: 600,
      credentialLifetimeSeconds: 3600,
    });
    expect(i.tags).toEqual([
      { key: 'Name', value: 'web-1' },
      { key: 'team', value: 'payments' },
    ]);
    expect(i.userData).toBe('#cloud-config\npackages: [nginx]\n');
    expect(i.amiId).toBe(defaultInstance().amiId);
  });

  it('loads a JSON file; null removes the role and the user data', () => {
    const i = loadInstanceFile(join(FIXTURES, 'instance-valid.json'));
    expect(i.iam).toBeNull();
    expect(i.userData).toBeNull();
    expect(i.accountId).toBe('210987654321');
  });

  it.each([
    ['instance-bad-role.json', 'iam.role: must be a string'],
    ['instance-bad-tag.yaml', 'tags[2].key: must be'],
    ['instance-unknown-key.yaml', 'instanceTyp: unknown key "instanceTyp"'],
  ])('names the field of a bad file: %s', (file, message) => {
    const path = join(FIXTURES, file);
    const err = failure(() => loadInstanceFile(path));
    expect(err.code).toBe('IMDSGUARD_E_INSTANCE_FILE');
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(`${path}: ${message}`);
  });

  it('reports unreadable files and syntax errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'imdsguard-instance-'));
    expect(failure(() => loadInstanceFile(join(dir, 'missing.yaml'))).message).toContain(
      'cannot read the instance file (ENOENT)',
    );
    const badYaml = join(dir, 'bad.yaml');
    writeFileSync(badYaml, 'tags: [unclosed\n');
    expect(failure(() => loadInstanceFile(badYaml)).message).toContain('not valid YAML');
    const badJson = join(dir, 'bad.json');
    writeFileSync(badJson, '{"iam": ');
    expect(failure(() => loadInstanceFile(badJson)).message).toContain('not valid JSON');
  });
});
