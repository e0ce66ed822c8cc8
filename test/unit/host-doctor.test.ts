import { describe, expect, it } from 'vitest';
import { doctorExitCode, evaluateDoctor, renderChecks } from '../../src/host/doctor.js';
import {
  type DoctorFacts,
  iptablesBridgeRules,
  iptablesRedirect,
  listeningInodes,
  nftBridgeRules,
  parseProcStatus,
} from '../../src/host/doctor-facts.js';
import {
  desiredIptables,
  type IptDesired,
  parseIptablesSave,
  scratchIptables,
} from '../../src/host/iptables.js';
import { nftTableDefinition } from '../../src/host/nftables.js';
import type { RuleOptions } from '../../src/host/types.js';

const CAPS = (1n << 2n) | (1n << 19n);

function healthy(): DoctorFacts {
  return {
    port: 16925,
    user: { name: 'imdsguard', uid: 998 },
    ipv6Expected: false,
    redirects: { backend: 'nftables', v4: { port: 16925, exempt: '998' }, v6: undefined },
    health: { url: 'http://127.0.0.1:16925/', healthy: true, detail: 'answered 200' },
    guard: { pid: 42, uid: 998, capEff: CAPS, capAmb: CAPS },
    viaGuard: { put: 200, get: 200 },
    imds: { skipped: undefined, put: 200, tokenless: 401 },
    sockDiag: { available: true },
    containers: { expected: [], routeLocalnet: {} },
  };
}

const status = (facts: DoctorFacts) => Object.fromEntries(evaluateDoctor(facts).map((c) => [c.id, c.status]));

describe('doctor evaluation', () => {
  it('is all ok on a healthy host and exits 0', () => {
    const checks = evaluateDoctor(healthy());
    expect(checks.map((c) => c.id)).toEqual([
      'redirect-v4',
      'redirect-v6',
      'containers',
      'guard-health',
      'guard-exempt',
      'imds-via-guard',
      'imds-settings',
      'capabilities',
      'attribution',
    ]);
    expect(checks.every((c) => c.status === 'ok')).toBe(true);
    expect(doctorExitCode(checks)).toBe(0);
    expect(renderChecks(checks)).toContain('all checks passed');
  });

  it('warns, with the reason and the fix, when the sock_diag addon is not built', () => {
    const f = healthy();
    f.sockDiag = {
      available: false,
      reason: 'native addon not built (npm run build:native); using /proc/net/tcp',
    };
    const c = evaluateDoctor(f).find((x) => x.id === 'attribution');
    expect(c?.status).toBe('warn');
    expect(c?.detail).toContain('native addon not built');
    expect(c?.fix).toContain('npm run build:native');
    expect(doctorExitCode(evaluateDoctor(f))).toBe(1);
  });

  it('names each broken piece', () => {
    const noRule = healthy();
    noRule.redirects.v4 = undefined;
    expect(status(noRule)['redirect-v4']).toBe('fail');
    expect(status(noRule)['guard-exempt']).toBe('fail');

    const wrongPort = healthy();
    wrongPort.redirects.v4 = { port: 1, exempt: '998' };
    expect(evaluateDoctor(wrongPort)[0]?.detail).toContain('port 1');

    const unreadable = healthy();
    unreadable.redirects = { backend: undefined, readable: false, v4: undefined, v6: undefined };
    expect(evaluateDoctor(unreadable)[0]?.detail).toContain('not root');

    const v6 = healthy();
    v6.ipv6Expected = true;
    expect(status(v6)['redirect-v6']).toBe('fail');

    const down = healthy();
    down.health = { url: 'http://127.0.0.1:16925/', healthy: false, detail: 'ECONNREFUSED' };
    down.viaGuard = { put: 'ECONNREFUSED', get: undefined };
    down.guard = undefined;
    const s = status(down);
    expect([s['guard-health'], s['imds-via-guard'], s['capabilities']]).toEqual(['fail', 'fail', 'warn']);
    expect(evaluateDoctor(down).find((c) => c.id === 'guard-health')?.detail).toContain('fail closed');

    const wrongUser = healthy();
    wrongUser.redirects.v4 = { port: 16925, exempt: '0' };
    expect(status(wrongUser)['guard-exempt']).toBe('fail');
    const guardAsOther = healthy();
    if (guardAsOther.guard) guardAsOther.guard.uid = 1000;
    expect(evaluateDoctor(guardAsOther).find((c) => c.id === 'guard-exempt')?.detail).toContain('loop');

    const noCaps = healthy();
    if (noCaps.guard) noCaps.guard.capEff = 1n << 2n;
    expect(evaluateDoctor(noCaps).find((c) => c.id === 'capabilities')?.detail).toContain('CAP_SYS_PTRACE');
    expect(doctorExitCode(evaluateDoctor(noCaps))).toBe(1);
  });

  it('reports what IMDS allows', () => {
    const v1 = healthy();
    v1.imds = { skipped: undefined, put: 200, tokenless: 200 };
    expect(evaluateDoctor(v1).find((c) => c.id === 'imds-settings')).toMatchObject({ status: 'warn' });
    const disabled = healthy();
    disabled.imds = { skipped: undefined, put: 403, tokenless: 403 };
    expect(evaluateDoctor(disabled).find((c) => c.id === 'imds-settings')?.detail).toContain('disabled');
    const gone = healthy();
    gone.imds = { skipped: undefined, put: 'ETIMEDOUT', tokenless: 'ETIMEDOUT' };
    expect(status(gone)['imds-settings']).toBe('fail');
    const notRoot = healthy();
    notRoot.imds = { skipped: 'not root', put: undefined, tokenless: undefined };
    expect(status(notRoot)['imds-settings']).toBe('warn');
  });
});

describe('doctor parsers', () => {
  it('reads the redirect and its exemption back from iptables-save', () => {
    const d = desiredIptables(
      { backend: 'iptables', port: 4000, ipv6: false, bridges: [], podInterfaces: [], exempt: '65534' },
      'ipv4',
    );
    const lines = ['*nat', ':OUTPUT ACCEPT [0:0]', ':IMDSGUARD - [0:0]'];
    for (const c of scratchIptables(d))
      if (c[2] !== '-N') lines.push(`-A ${c[3]} ${c.slice(c[2] === '-I' ? 5 : 4).join(' ')}`);
    lines.push('COMMIT');
    const saved = parseIptablesSave(lines.join('\n'));
    expect(iptablesRedirect(saved, 'ipv4')).toEqual({ port: 4000, exempt: '65534' });
    expect(iptablesRedirect(saved, 'ipv6')).toBeUndefined();
    // Without the jump from OUTPUT the chain redirects nothing.
    const noJump = parseIptablesSave(lines.filter((l) => !l.startsWith('-A OUTPUT')).join('\n'));
    expect(iptablesRedirect(noJump, 'ipv4')).toBeUndefined();
  });

  it('checks the container bridges install recorded: DNAT, route_localnet, the IPv6 refusal', () => {
    const f = healthy();
    const detail = (facts: DoctorFacts) => evaluateDoctor(facts).find((c) => c.id === 'containers');
    expect(detail(f)).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining('no container interfaces'),
    });
    f.ipv6Expected = true;
    f.redirects.v6 = { port: 16925, exempt: '998' };
    f.redirects.bridges = {
      dnat: [{ bridge: 'docker0', port: 16925 }],
      v6Refused: ['docker0'],
      loopbackDrop: ['docker0', 'cni0'],
    };
    f.containers = { expected: ['docker0', 'cni0'], routeLocalnet: { docker0: true, cni0: undefined } };
    // cni0 does not exist yet: its rules are still required (it may appear later).
    expect(detail(f)).toMatchObject({ status: 'fail', detail: expect.stringContaining('cni0: no DNAT') });
    f.redirects.bridges.dnat.push({ bridge: 'cni0', port: 16925 });
    f.redirects.bridges.v6Refused.push('cni0');
    expect(detail(f)).toEqual({
      id: 'containers',
      status: 'ok',
      detail: 'docker0, cni0 -> 127.0.0.1:16925, IPv6 refused (cni0 not present yet)',
      fix: '',
    });
    const broken = (change: (x: DoctorFacts) => void) => {
      const x = structuredClone(f);
      change(x);
      return detail(x);
    };
    expect(broken((x) => (x.containers.routeLocalnet['docker0'] = false))).toMatchObject({
      status: 'fail',
      detail: 'docker0: route_localnet is 0, so the DNAT to 127.0.0.1 is dropped',
      fix: 'sudo imdsguard install --apply --containers --bridges docker0,cni0 --ipv6',
    });
    expect(broken((x) => x.redirects.bridges?.loopbackDrop.splice(0, 1))?.detail).toBe(
      'docker0: nothing drops its other traffic to 127.0.0.0/8, which route_localnet lets through',
    );
    expect(broken((x) => x.redirects.bridges?.v6Refused.splice(0, 1))?.detail).toContain(
      'docker0: IPv6 metadata traffic is not refused',
    );
    expect(
      broken(
        (x) =>
          (((x.redirects.bridges as { dnat: Array<{ port: number }> }).dnat[0] as { port: number }).port = 9),
      )?.detail,
    ).toBe('docker0: DNAT to port 9, but the guard port is 16925');
    expect(doctorExitCode(evaluateDoctor(f))).toBe(0);
  });

  it('reads the container rules back from iptables-save and from the nft table', () => {
    const opts: RuleOptions = {
      backend: 'iptables',
      port: 4000,
      ipv6: true,
      bridges: ['docker0', 'cni0'],
      podInterfaces: [],
      exempt: '998',
    };
    const save = (d: IptDesired) => {
      const lines: string[] = [];
      for (const table of ['nat', 'filter']) {
        lines.push(
          `*${table}`,
          ':OUTPUT ACCEPT [0:0]',
          ':PREROUTING ACCEPT [0:0]',
          ':INPUT ACCEPT [0:0]',
          ':FORWARD ACCEPT [0:0]',
        );
        for (const c of scratchIptables(d)) {
          if (c[1] !== table) continue;
          if (c[2] === '-N') lines.push(`:${c[3]} - [0:0]`);
          else lines.push(`-A ${c[3]} ${c.slice(c[2] === '-I' ? 5 : 4).join(' ')}`);
        }
        lines.push('COMMIT');
      }
      return parseIptablesSave(lines.join('\n'));
    };
    const v4 = save(desiredIptables(opts, 'ipv4'));
    const v6 = save(desiredIptables(opts, 'ipv6'));
    const want = {
      dnat: [
        { bridge: 'docker0', port: 4000 },
        { bridge: 'cni0', port: 4000 },
      ],
      v6Refused: ['docker0', 'cni0'],
      loopbackDrop: ['docker0', 'cni0'],
    };
    expect(iptablesBridgeRules(v4, v6)).toEqual(want);
    // The nft listing is read back sorted by bridge.
    expect(nftBridgeRules(nftTableDefinition({ ...opts, backend: 'nftables' }))).toEqual({
      dnat: [...want.dnat].reverse(),
      v6Refused: ['cni0', 'docker0'],
      loopbackDrop: ['cni0', 'docker0'],
    });
    // Without --ipv6 nothing is refused; without bridges nothing at all.
    expect(
      nftBridgeRules(nftTableDefinition({ ...opts, backend: 'nftables', ipv6: false })).v6Refused,
    ).toEqual([]);
    expect(iptablesBridgeRules(save(desiredIptables({ ...opts, bridges: [] }, 'ipv4')), undefined)).toEqual({
      dnat: [],
      v6Refused: [],
      loopbackDrop: [],
    });
  });

  it('finds listening sockets and capabilities in /proc text', () => {
    const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:421D 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 123456 1 0000000000000000 100 0 0 10 0
   1: 0100007F:421D 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 65534        0 123457 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0`;
    expect(listeningInodes(tcp, 16925)).toEqual(['123456']);
    const st = parseProcStatus(
      'Name:\tnode\nUid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000080004\nCapAmb:\t0000000000080004\n',
    );
    expect(st).toEqual({ uid: 65534, capEff: CAPS, capAmb: CAPS });
  });
});
