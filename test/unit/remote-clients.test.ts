import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { remoteListenProblem } from '../../src/config/schema.js';
import type { Caller } from '../../src/guard/attribution/types.js';
import { createGuard } from '../../src/guard/index.js';
import { compilePolicy } from '../../src/guard/policy/index.js';
import { isRemoteClient } from '../../src/guard/proxy/local-addresses.js';
import { classifyRequest } from '../../src/imds/classify.js';
import type { Flavor } from '../../src/imds/flavors.js';
import { type HeaderMap, rawHeaderList } from '../support/header-list.js';

/**
 * Remote clients: who is one (isRemoteClient), what the policy lets them do (only the secret or a
 * configured rule lets a tokenless request through), and where the guard may listen.
 */

describe('isRemoteClient', () => {
  it.each([
    // [guard's local address, client is one of this host's addresses, remote?]
    ['10.0.0.5', false, true],
    ['::ffff:10.0.0.5', false, true],
    ['fd00::5', false, true],
    ['fe80::1%eth0', false, true],
    ['10.0.0.5', true, false], // a process on this host through the host's own address
    ['127.0.0.1', false, false], // a container or pod DNATed to loopback: local, whatever its source
    ['127.0.0.53', false, false],
    ['::1', false, false],
    ['::ffff:127.0.0.1', false, false],
    ['', false, false], // socket already gone
  ] as const)('local %s, host client %s -> remote %s', (local, hostClient, remote) => {
    expect(isRemoteClient(local, hostClient)).toBe(remote);
  });
});

const SECRET = 'remote-secret-0123';
const LOCAL = { address: '10.0.0.5', port: 16925 };

function decide(
  guard: Record<string, unknown>,
  headers: HeaderMap,
  opts: { remote?: boolean; method?: string; target?: string; flavor?: Flavor; caller?: Caller } = {},
) {
  const cfg = parseConfig({ guard: { allowRemoteListen: true, ...guard } }).guard;
  const p = compilePolicy(cfg, { attribution: true });
  const cls = classifyRequest(
    {
      method: opts.method ?? 'GET',
      target: opts.target ?? '/latest/meta-data/iam/security-credentials/',
      rawHeaders: rawHeaderList({ host: '169.254.169.254', ...headers }),
      local: LOCAL,
      clientNetns: 'other',
      remote: opts.remote ?? true,
    },
    opts.flavor ?? 'aws',
    'x-meta-auth',
  );
  return p.decide(cls, opts.caller ?? { resolved: 'none', error: 'not on this host' });
}

describe('the policy for remote clients', () => {
  it.each([
    ['a default User-Agent', { 'user-agent': 'aws-cli/2.15.0 Python/3.11' }],
    ['Metadata-Flavor: Amazon', { 'metadata-flavor': 'Amazon' }],
    ['nothing at all', {}],
  ])('a tokenless request with %s is refused (remote-v1, 401)', (_n, headers) => {
    const d = decide({}, headers);
    expect(d).toMatchObject({ decision: 'deny', rule: 'remote-v1', status: 401, alert: true });
  });

  it('the same request from a local client is allowed by the User-Agent default (control)', () => {
    expect(decide({}, { 'user-agent': 'aws-cli/2.15.0' }, { remote: false }).rule).toBe('ua-allowlist');
  });

  it('allowExe and allowUser do not count for a remote client (its process is on another host)', () => {
    const caller: Caller = { resolved: 'full', pid: 9, exe: '/usr/bin/curl', uid: 0, user: 'root' };
    const d = decide({ allowExe: ['/usr/bin/curl'], allowUser: ['root'] }, {}, { caller });
    expect(d.rule).toBe('remote-v1');
  });

  it('requireV2 names the remote client too', () => {
    expect(decide({ requireV2: true }, { 'user-agent': 'aws-cli/2' }).rule).toBe('remote-v1');
  });

  it('the secret lets a remote tokenless request through (auth-header)', () => {
    const d = decide({ authSecret: SECRET }, { 'x-meta-auth': SECRET });
    expect(d).toMatchObject({ decision: 'allow', rule: 'auth-header' });
  });

  it('a configured rule lets a remote tokenless request through', () => {
    const d = decide(
      { rules: [{ name: 'fleet-probe', action: 'allow', path: '/latest/meta-data/instance-id' }] },
      {},
      { target: '/latest/meta-data/instance-id' },
    );
    expect(d).toMatchObject({ decision: 'allow', rule: 'fleet-probe' });
  });

  it('a token-bearing request from a remote client is IMDSv2 as any other (the token is the proof)', () => {
    expect(decide({}, { 'x-aws-ec2-metadata-token': 'AQAEAtok' }).rule).toBe('imdsv2');
  });

  it('a remote token PUT is refused as from another network namespace (container-token)', () => {
    const d = decide(
      {},
      { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
      { method: 'PUT', target: '/latest/api/token' },
    );
    expect(d).toMatchObject({ decision: 'deny', rule: 'container-token' });
  });

  it.each([
    ['gcp', { 'metadata-flavor': 'Google' }],
    ['azure', { metadata: 'true' }],
    ['digitalocean', {}],
  ] as const)(
    '%s: a header any client can send is no proof from a remote client (remote-v1)',
    (flavor, headers) => {
      const d = decide({ flavor }, headers, { flavor, target: '/' });
      expect(d.rule).toBe('remote-v1');
    },
  );

  it('gcp: with the secret, a remote client is allowed', () => {
    const d = decide(
      { flavor: 'gcp', authSecret: SECRET },
      { 'metadata-flavor': 'Google', 'x-meta-auth': SECRET },
      { flavor: 'gcp', target: '/computeMetadata/v1/' },
    );
    expect(d.decision).toBe('allow');
  });
});

describe('where the guard may listen', () => {
  it.each([
    ['enforce', '0.0.0.0', false, true],
    ['monitor', '::', false, true],
    ['enforce', '10.1.2.3', false, true],
    ['enforce', '0.0.0.0', true, false],
    ['trap', '0.0.0.0', false, false],
    ['enforce', '127.0.0.1', false, false],
    ['monitor', '::1', false, false],
    ['enforce', 'localhost', false, false],
  ] as const)('%s on %s (allowRemoteListen %s): refused %s', (mode, host, allow, refused) => {
    expect(remoteListenProblem(mode, { host, port: 1 }, allow) !== undefined).toBe(refused);
  });

  it('the config refuses enforce on 0.0.0.0 with a message naming the address and the option', () => {
    expect(() => parseConfig({ guard: { listen: ['0.0.0.0:16925'] } })).toThrow(
      /guard\.listen\[0\]: 0\.0\.0\.0:16925 is not a loopback address: in enforce mode .*guard\.allowRemoteListen: true \(flag --allow-remote-listen\)/,
    );
    expect(() =>
      parseConfig({ guard: { listen: ['0.0.0.0:16925'], allowRemoteListen: true } }),
    ).not.toThrow();
    expect(() => parseConfig({ guard: { mode: 'trap', listen: ['0.0.0.0:16925'] } })).not.toThrow();
  });

  it('a reload may not turn a trap listening on 0.0.0.0 into enforce (the listener stays)', async () => {
    const trap = parseConfig({ guard: { mode: 'trap', listen: ['0.0.0.0:0'] } }).guard;
    const guard = createGuard({ config: trap, hostname: 'h' });
    await guard.start();
    try {
      // the reloaded file moved the listener to loopback, which only a restart applies
      const enforce = parseConfig({ guard: { mode: 'enforce', listen: ['127.0.0.1:0'] } }).guard;
      expect(() => guard.reload(enforce)).toThrow(/0\.0\.0\.0:\d+ is not a loopback address/);
      expect(guard.mode).toBe('trap');
      const allowed = parseConfig({
        guard: { mode: 'enforce', listen: ['127.0.0.1:0'], allowRemoteListen: true },
      }).guard;
      guard.reload(allowed);
      expect(guard.mode).toBe('enforce');
    } finally {
      await guard.close();
    }
  });
});
