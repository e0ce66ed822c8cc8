import { describe, expect, it } from 'vitest';
import { parsePodInterfaces, parseSysctlRoot } from '../../src/cli/host-options.js';
import { isImdsguardError } from '../../src/errors.js';
import { evaluateDoctor } from '../../src/host/doctor.js';
import { MAX_NAMED_INTERFACES } from '../../src/host/doctor-containers.js';
import { type DoctorFacts, iptablesBridgeRules, nftBridgeRules } from '../../src/host/doctor-facts.js';
import {
  desiredIptables,
  parseIptablesSave,
  reconcileIptables,
  scratchIptables,
} from '../../src/host/iptables.js';
import {
  chainRuleCounts,
  nftInterfaceMatches,
  nftTableBody,
  nftTableDefinition,
  nftUpToDate,
} from '../../src/host/nftables.js';
import { buildInstallPlan, renderPlan } from '../../src/host/plan.js';
import { sandboxHiddenPaths } from '../../src/host/sandbox.js';
import { hookInstallArgv, interfacesUnitFile, watcherArgv } from '../../src/host/systemd.js';
import { type InstallOptions, interfaceMatches, type RuleOptions } from '../../src/host/types.js';
import { installOptions, ruleOptions } from '../support/host-fixtures.js';

/**
 * --pod-interfaces: pod veths (eni+, cali+, lxc+) redirected like bridges, in both backends; the
 * interface watcher's unit; doctor's view of them. The rules themselves run in test/e2e.
 */

const rules = (o: Partial<RuleOptions> = {}): RuleOptions =>
  ruleOptions({ podInterfaces: ['eni+', 'cali+'], ...o });
const install = (o: Partial<InstallOptions> = {}): InstallOptions =>
  installOptions({ ...rules(), self: ['/usr/bin/imdsguard'], ...o });

/** iptables-save text of the desired state of one family, as the kernel would print it. */
function saved(o: RuleOptions, family: 'ipv4' | 'ipv6'): string {
  const d = desiredIptables(o, family);
  const lines: string[] = [];
  for (const table of ['nat', 'filter']) {
    lines.push(`*${table}`);
    for (const c of ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT']) lines.push(`:${c} ACCEPT [0:0]`);
    for (const c of d.chains.filter((x) => x.table === table)) lines.push(`:${c.name} - [0:0]`);
    for (const j of d.jumps.filter((x) => x.table === table)) lines.push(`-A ${j.chain} ${j.rule}`);
    for (const c of d.chains.filter((x) => x.table === table))
      for (const r of c.rules) lines.push(`-A ${c.name} ${r}`);
    lines.push('COMMIT');
  }
  return `${lines.join('\n')}\n`;
}

describe('pod interface patterns', () => {
  it('match as iptables does: NAME+ is a prefix, anything else exactly', () => {
    expect(interfaceMatches('eni+', 'eni0a1b2c3d4e5')).toBe(true);
    expect(interfaceMatches('eni+', 'eni')).toBe(true);
    expect(interfaceMatches('eni+', 'eth0')).toBe(false);
    expect(interfaceMatches('cni0', 'cni0')).toBe(true);
    expect(interfaceMatches('cni0', 'cni01')).toBe(false);
  });

  it('are parsed strictly: no loopback, no bare +, at most 15 characters', () => {
    expect(parsePodInterfaces('eni+, cali+,lxc+,eni+')).toEqual(['eni+', 'cali+', 'lxc+']);
    expect(parsePodInterfaces('veth-pod1')).toEqual(['veth-pod1']);
    expect(parsePodInterfaces('abcdefghijklmn+')).toEqual(['abcdefghijklmn+']);
    for (const bad of ['+', 'lo', 'l+', 'lo+', 'eni*', 'e ni+', 'abcdefghijklmno+', 'eni+x', '']) {
      let err: unknown;
      try {
        parsePodInterfaces(bad);
      } catch (e) {
        err = e;
      }
      expect(isImdsguardError(err, 'IMDSGUARD_E_USAGE'), bad).toBe(true);
    }
    expect(parseSysctlRoot(undefined)).toBe('/proc/sys');
    expect(parseSysctlRoot('/host/proc/sys/')).toBe('/host/proc/sys');
    expect(() => parseSysctlRoot('host/proc/sys')).toThrow(/absolute/);
  });
});

describe('iptables rules for pod interfaces', () => {
  it('DNAT each pattern to the guard, drop its other loopback traffic, and refuse IPv6', () => {
    const o = rules({ bridges: ['docker0'], ipv6: true });
    const v4 = desiredIptables(o, 'ipv4');
    const pre = v4.chains.find((c) => c.name === 'IMDSGUARD-PRE')?.rules ?? [];
    expect(pre).toEqual([
      '-d 169.254.169.254/32 -i docker0 -p tcp -m tcp --dport 80 -m comment --comment imdsguard -j DNAT --to-destination 127.0.0.1:16925',
      '-d 169.254.169.254/32 -i eni+ -p tcp -m tcp --dport 80 -m comment --comment imdsguard -j DNAT --to-destination 127.0.0.1:16925',
      '-d 169.254.169.254/32 -i cali+ -p tcp -m tcp --dport 80 -m comment --comment imdsguard -j DNAT --to-destination 127.0.0.1:16925',
    ]);
    const drop = v4.chains.find((c) => c.name === 'IMDSGUARD-IN')?.rules ?? [];
    expect(drop.map((r) => / -i (\S+) /.exec(r)?.[1])).toEqual(['docker0', 'eni+', 'cali+']);
    const v6 = desiredIptables(o, 'ipv6').chains.find((c) => c.name === 'IMDSGUARD-CTR')?.rules ?? [];
    expect(v6.map((r) => / -i (\S+) /.exec(r)?.[1])).toEqual(['docker0', 'eni+', 'cali+']);
    expect(v6.every((r) => r.endsWith('-j REJECT --reject-with tcp-reset'))).toBe(true);
  });

  it('read back from iptables-save exactly as installed, so a second install changes nothing', () => {
    const o = rules({ ipv6: true });
    const v4 = parseIptablesSave(saved(o, 'ipv4'));
    const v6 = parseIptablesSave(saved(o, 'ipv6'));
    expect(reconcileIptables(v4, desiredIptables(o, 'ipv4')).commands).toEqual([]);
    expect(reconcileIptables(v6, desiredIptables(o, 'ipv6')).commands).toEqual([]);
    expect(iptablesBridgeRules(v4, v6)).toEqual({
      dnat: [
        { bridge: 'eni+', port: 16925 },
        { bridge: 'cali+', port: 16925 },
      ],
      v6Refused: ['eni+', 'cali+'],
      loopbackDrop: ['eni+', 'cali+'],
    });
    // dropping a pattern deletes exactly its rules
    const fewer = reconcileIptables(v4, desiredIptables(rules({ podInterfaces: ['eni+'] }), 'ipv4'));
    const added = fewer.commands.filter((c) => c.includes('-A')).map((c) => c.join(' '));
    expect(added.join('\n')).toContain('-i eni+');
    expect(added.join('\n')).not.toContain('-i cali+');
    expect(scratchIptables(desiredIptables(rules({ podInterfaces: [] }), 'ipv4')).join('\n')).not.toContain(
      'PREROUTING',
    );
  });
});

describe('nftables rules for pod interfaces', () => {
  it('keep exact names in a set and give each pattern its own rule', () => {
    expect(nftInterfaceMatches(['docker0', 'eni+', 'cni0', 'lxc+'])).toEqual([
      'iifname { "docker0", "cni0" }',
      'iifname "eni*"',
      'iifname "lxc*"',
    ]);
    const body = nftTableBody(rules({ backend: 'nftables', ipv6: true }));
    expect(body).toContain('iifname "eni*" ip daddr 169.254.169.254 tcp dport 80 dnat ip to 127.0.0.1:16925');
    expect(body).toContain('iifname "cali*" ip daddr 127.0.0.0/8 ct status ! dnat drop');
    expect(body).toContain('iifname "cali*" ip6 daddr fd00:ec2::254 tcp dport 80 reject with tcp reset');
    expect(chainRuleCounts(nftTableDefinition(rules({ backend: 'nftables', ipv6: true })))).toEqual({
      output: 2,
      prerouting: 2,
      input: 4,
      forward: 2,
    });
  });

  it('read back as patterns from what nft lists, and a listing is up to date', () => {
    const o = rules({ backend: 'nftables', bridges: ['docker0'], ipv6: true });
    // nft prints priorities by name and may reorder set elements.
    const listing = nftTableDefinition(o).replace(/priority -101/g, 'priority dstnat - 1');
    expect(nftBridgeRules(listing)).toEqual({
      dnat: [
        { bridge: 'cali+', port: 16925 },
        { bridge: 'docker0', port: 16925 },
        { bridge: 'eni+', port: 16925 },
      ],
      v6Refused: ['cali+', 'docker0', 'eni+'],
      loopbackDrop: ['cali+', 'docker0', 'eni+'],
    });
    expect(nftUpToDate(listing, o)).toBe(true);
    expect(nftUpToDate(listing, { ...o, podInterfaces: ['eni+'] })).toBe(false);
    const flushedOne = listing.replace(/\n\t\tiifname "cali\*" ip daddr 127[^\n]*/, '');
    expect(nftUpToDate(flushedOne, o)).toBe(false);
  });
});

describe('the interface watcher unit', () => {
  it('runs install --watch-interfaces as root with only CAP_NET_ADMIN and CAP_NET_RAW, with the guard', () => {
    const o = install();
    expect(watcherArgv(o)).toEqual([
      '/usr/bin/imdsguard',
      'install',
      '--apply',
      '--watch-interfaces',
      '--pod-interfaces',
      'eni+,cali+',
    ]);
    const lines = interfacesUnitFile(o).split('\n');
    for (const l of [
      'ExecStart=/usr/bin/imdsguard install --apply --watch-interfaces --pod-interfaces eni+,cali+',
      'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW',
      'PartOf=imdsguard.service',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK',
    ])
      expect(lines).toContain(l);
    expect(lines.filter((l) => !l.startsWith('#'))).not.toContain('ProtectKernelTunables=yes');
    // The same sandbox check as the guard's unit applies to it.
    expect(sandboxHiddenPaths(interfacesUnitFile(o)).map((h) => h.path)).toContain('/root');
    // The unit hooks reproduce the patterns.
    expect(hookInstallArgv(o).join(' ')).toContain('--pod-interfaces eni+,cali+');
  });

  it('is written and enabled with --systemd, and the plan says when route_localnet goes on', () => {
    const plan = buildInstallPlan(install());
    expect(plan.files.map((f) => f.path)).toContain('/etc/systemd/system/imdsguard-interfaces.service');
    expect(plan.systemd.map((c) => c.argv.join(' '))).toContain(
      'systemctl enable imdsguard-interfaces.service',
    );
    expect(buildInstallPlan(install({ systemd: false })).files.map((f) => f.path)).not.toContain(
      '/etc/systemd/system/imdsguard-interfaces.service',
    );
    const text = renderPlan(plan, { rulesOnly: false });
    expect(text).toContain('pod interfaces: eni+ cali+');
    const rulesAt = text.indexOf('# the redirect');
    const localnetAt = text.indexOf('/proc/sys/net/ipv4/conf/eni*/route_localnet');
    expect(localnetAt).toBeGreaterThan(rulesAt);
  });
});

describe('doctor on pod interfaces', () => {
  const facts = (pods: Record<string, boolean>): DoctorFacts => ({
    port: 16925,
    user: { name: 'imdsguard', uid: 998 },
    ipv6Expected: false,
    redirects: {
      backend: 'iptables',
      v4: { port: 16925, exempt: '998' },
      v6: undefined,
      bridges: {
        dnat: [
          { bridge: 'eni+', port: 16925 },
          { bridge: 'cali+', port: 16925 },
        ],
        v6Refused: [],
        loopbackDrop: ['eni+', 'cali+'],
      },
    },
    health: { url: 'http://127.0.0.1:16925/', healthy: true, detail: 'answered 200' },
    guard: { pid: 42, uid: 998, capEff: (1n << 2n) | (1n << 19n), capAmb: 0n },
    viaGuard: { put: 200, get: 200 },
    imds: { skipped: undefined, put: 200, tokenless: 401 },
    sockDiag: { available: true },
    containers: { expected: ['eni+', 'cali+'], routeLocalnet: {}, podInterfaces: pods },
  });
  const check = (f: DoctorFacts) => evaluateDoctor(f).find((c) => c.id === 'containers');

  it('is ok when every matching interface has route_localnet, and counts them', () => {
    expect(check(facts({ eni1: true, eni2: true }))).toEqual({
      id: 'containers',
      status: 'ok',
      detail: 'eni+, cali+ -> 127.0.0.1:16925 (now: eni+ 2 interfaces, cali+ 0 interfaces)',
      fix: '',
    });
  });

  it('names the interfaces whose route_localnet is off (a bounded list) and the watcher', () => {
    const many: Record<string, boolean> = { cali9: true };
    for (let i = 0; i < MAX_NAMED_INTERFACES + 3; i++) many[`eni${i}`] = false;
    const c = check(facts(many));
    expect(c?.status).toBe('fail');
    expect(c?.detail).toBe(
      'eni0, eni1, eni2, eni3, eni4 and 3 more (eni+): route_localnet is 0, so the DNAT to 127.0.0.1 is dropped (is the interface watcher running? install --watch-interfaces)',
    );
    expect(c?.fix).toBe('sudo imdsguard install --apply --pod-interfaces eni+,cali+');
  });

  it('fails when a pattern lost its DNAT or its loopback drop', () => {
    const f = facts({});
    f.redirects.bridges?.loopbackDrop.splice(1, 1);
    expect(check(f)?.detail).toBe(
      'cali+: nothing drops its other traffic to 127.0.0.0/8, which route_localnet lets through',
    );
    f.redirects.bridges?.dnat.splice(0, 1);
    expect(check(f)?.detail).toContain('eni+: no DNAT to the guard');
  });
});
