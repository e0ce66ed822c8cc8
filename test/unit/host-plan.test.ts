import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseBridges, parsePort, parseRoot } from '../../src/cli/host-options.js';
import { parseConfig } from '../../src/config/index.js';
import { isImdsguardError } from '../../src/errors.js';
import { configFile } from '../../src/host/files.js';
import {
  desiredIptables,
  isOurRule,
  isPristineTable,
  parseIptablesSave,
  reconcileIptables,
  scratchIptables,
} from '../../src/host/iptables.js';
import {
  chainRuleCounts,
  listedDigest,
  nftInstallScript,
  nftTableBody,
  nftTableDefinition,
  nftUpToDate,
  parseNftListing,
} from '../../src/host/nftables.js';
import { buildInstallPlan, renderPlan } from '../../src/host/plan.js';
import { execLine, hookInstallArgv, systemdQuote, unitFile } from '../../src/host/systemd.js';
import type { InstallOptions } from '../../src/host/types.js';
import { installOptions, ruleOptions } from '../support/host-fixtures.js';

const rules = ruleOptions;
const install = installOptions;

/** Simulates iptables: applies -N/-A/-I/-D/-F/-X argv to an iptables-save text model. */
function applyToSave(save: string, commands: string[][]): string {
  const tables = parseIptablesSave(save);
  for (const c of commands) {
    const table = c[1] as string;
    const op = c[2];
    const chain = c[3] as string;
    let t = tables.get(table);
    if (!t) {
      t = {
        chains: new Map([
          ['OUTPUT', { policy: 'ACCEPT', rules: [] }],
          ['PREROUTING', { policy: 'ACCEPT', rules: [] }],
          ['INPUT', { policy: 'ACCEPT', rules: [] }],
          ['FORWARD', { policy: 'ACCEPT', rules: [] }],
        ]),
      };
      tables.set(table, t);
    }
    const ch = t.chains.get(chain);
    if (op === '-N') {
      if (ch) throw new Error(`chain ${chain} exists`);
      t.chains.set(chain, { policy: '-', rules: [] });
    } else if (op === '-X') {
      if (!ch || ch.rules.length > 0) throw new Error(`cannot delete ${chain}`);
      t.chains.delete(chain);
    } else if (op === '-F') {
      if (!ch) throw new Error(`no chain ${chain}`);
      ch.rules = [];
    } else if (op === '-A') {
      if (!ch) throw new Error(`no chain ${chain}`);
      ch.rules.push(c.slice(4).join(' '));
    } else if (op === '-I') {
      if (!ch) throw new Error(`no chain ${chain}`);
      ch.rules.unshift(c.slice(5).join(' '));
    } else if (op === '-D') {
      if (!ch) throw new Error(`no chain ${chain}`);
      const i = ch.rules.indexOf(c.slice(4).join(' '));
      if (i < 0) throw new Error(`no such rule in ${chain}`);
      ch.rules.splice(i, 1);
    }
  }
  const out: string[] = [];
  for (const [name, t] of tables) {
    out.push(`*${name}`);
    for (const [cname, ch] of t.chains) out.push(`:${cname} ${ch.policy} [0:0]`);
    for (const [cname, ch] of t.chains) for (const r of ch.rules) out.push(`-A ${cname} ${r}`);
    out.push('COMMIT');
  }
  return `${out.join('\n')}\n`;
}

const FOREIGN = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
COMMIT
`;

describe('iptables rules', () => {
  it('redirects IPv4 metadata traffic to the guard port and exempts the guard uid', () => {
    const d = desiredIptables(rules({ port: 1234, exempt: '65534' }), 'ipv4');
    expect(d.chains).toEqual([
      {
        table: 'nat',
        name: 'IMDSGUARD',
        rules: [
          '-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m owner ! --uid-owner 65534 -m comment --comment imdsguard -j REDIRECT --to-ports 1234',
        ],
      },
    ]);
    expect(d.jumps).toEqual([
      {
        table: 'nat',
        chain: 'OUTPUT',
        rule: '-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -m comment --comment imdsguard -j IMDSGUARD',
      },
    ]);
    expect(desiredIptables(rules(), 'ipv6').chains).toEqual([]);
  });

  it('adds ip6tables rules for fd00:ec2::254 with --ipv6', () => {
    const d = desiredIptables(rules({ ipv6: true }), 'ipv6');
    expect(d.chains[0]?.rules[0]).toContain('-d fd00:ec2::254/128');
    expect(d.chains[0]?.rules[0]).toContain('! --uid-owner 998');
    expect(d.jumps[0]?.chain).toBe('OUTPUT');
  });

  it('adds DNAT from each bridge plus the loopback guard rule with --containers', () => {
    const d = desiredIptables(rules({ bridges: ['docker0', 'cni0'] }), 'ipv4');
    const pre = d.chains.find((c) => c.name === 'IMDSGUARD-PRE');
    expect(pre?.rules).toHaveLength(2);
    expect(pre?.rules[1]).toContain('-i cni0');
    expect(pre?.rules[1]).toContain('-j DNAT --to-destination 127.0.0.1:16925');
    const input = d.chains.find((c) => c.name === 'IMDSGUARD-IN');
    expect(input?.table).toBe('filter');
    expect(input?.rules[0]).toContain('! --ctstate RELATED,ESTABLISHED,DNAT');
    expect(d.jumps.map((j) => `${j.table}/${j.chain}`)).toEqual([
      'nat/OUTPUT',
      'nat/PREROUTING',
      'filter/INPUT',
    ]);
  });

  it('refuses IPv6 metadata traffic from the bridges with --containers --ipv6 (no route_localnet in IPv6)', () => {
    const d = desiredIptables(rules({ ipv6: true, bridges: ['docker0', 'cni0'] }), 'ipv6');
    const ctr = d.chains.find((c) => c.name === 'IMDSGUARD-CTR');
    expect(ctr?.table).toBe('filter');
    expect(ctr?.rules).toEqual([
      '-d fd00:ec2::254/128 -i docker0 -p tcp -m tcp --dport 80 -m comment --comment imdsguard -j REJECT --reject-with tcp-reset',
      '-d fd00:ec2::254/128 -i cni0 -p tcp -m tcp --dport 80 -m comment --comment imdsguard -j REJECT --reject-with tcp-reset',
    ]);
    expect(d.jumps.map((j) => `${j.table}/${j.chain}`)).toEqual([
      'nat/OUTPUT',
      'filter/INPUT',
      'filter/FORWARD',
    ]);
    // Without --ipv6 nothing IPv6 is installed, bridges or not; without bridges nothing is refused.
    expect(desiredIptables(rules({ bridges: ['docker0'] }), 'ipv6').chains).toEqual([]);
    expect(desiredIptables(rules({ ipv6: true }), 'ipv6').chains.map((c) => c.name)).toEqual(['IMDSGUARD']);
    // Reconciling the result again computes nothing; uninstall removes both jumps and the chain.
    const installed = parseIptablesSave(applyToSave('', scratchIptables(d)));
    expect(reconcileIptables(installed, d).commands).toEqual([]);
    const removal = reconcileIptables(installed, { family: 'ipv6', chains: [], jumps: [] }).commands;
    expect(removal.filter((c) => c[2] === '-D').map((c) => c[3])).toEqual(['OUTPUT', 'INPUT', 'FORWARD']);
    expect(removal.filter((c) => c[2] === '-X').map((c) => c[3])).toEqual(['IMDSGUARD', 'IMDSGUARD-CTR']);
  });

  it('creates chains before the jumps to them', () => {
    const cmds = scratchIptables(desiredIptables(rules(), 'ipv4'));
    expect(cmds.map((c) => c[2])).toEqual(['-N', '-A', '-I']);
  });

  it('is idempotent: a second reconcile against the result computes nothing', () => {
    for (const o of [rules(), rules({ bridges: ['docker0'] })]) {
      const d = desiredIptables(o, 'ipv4');
      const first = reconcileIptables(parseIptablesSave(FOREIGN), d);
      expect(first.commands.length).toBeGreaterThan(0);
      const after = applyToSave(FOREIGN, first.commands);
      expect(reconcileIptables(parseIptablesSave(after), d).commands).toEqual([]);
    }
  });

  it('removes duplicate marked jumps and re-fills a chain whose rules drifted', () => {
    const d = desiredIptables(rules(), 'ipv4');
    const installed = applyToSave(FOREIGN, scratchIptables(d));
    const jump = d.jumps[0]?.rule as string;
    const dup = applyToSave(installed, [['-t', 'nat', '-I', 'OUTPUT', '1', ...jump.split(' ')]]);
    const fix = reconcileIptables(parseIptablesSave(dup), d).commands;
    expect(fix).toEqual([['-t', 'nat', '-D', 'OUTPUT', ...jump.split(' ')]]);
    const newPort = desiredIptables(rules({ port: 2000 }), 'ipv4');
    const moved = reconcileIptables(parseIptablesSave(installed), newPort).commands;
    expect(moved[0]).toEqual(['-t', 'nat', '-F', 'IMDSGUARD']);
    expect(moved[1]?.join(' ')).toContain('--to-ports 2000');
    expect(moved).toHaveLength(2);
  });

  it('uninstall removes exactly what install added and leaves foreign rules', () => {
    const d = desiredIptables(rules({ bridges: ['docker0'] }), 'ipv4');
    const installed = applyToSave(FOREIGN, scratchIptables(d));
    const removal = reconcileIptables(parseIptablesSave(installed), {
      family: 'ipv4',
      chains: [],
      jumps: [],
    });
    const after = applyToSave(installed, removal.commands);
    const nat = parseIptablesSave(after).get('nat');
    expect(nat?.chains.get('OUTPUT')?.rules).toEqual(
      parseIptablesSave(FOREIGN).get('nat')?.chains.get('OUTPUT')?.rules,
    );
    expect([...(nat?.chains.keys() ?? [])]).toEqual([
      'PREROUTING',
      'INPUT',
      'OUTPUT',
      'POSTROUTING',
      'DOCKER',
    ]);
    expect(parseIptablesSave(after).get('filter')?.chains.has('IMDSGUARD-IN')).toBe(false);
  });

  it('recognizes our rules only by mark or by a jump to our chains', () => {
    expect(isOurRule('-d 169.254.169.254/32 -m comment --comment imdsguard -j IMDSGUARD')).toBe(true);
    expect(isOurRule('-m comment --comment "imdsguard" -j ACCEPT')).toBe(true);
    expect(isOurRule('-m comment --comment imdsguard-other -j ACCEPT')).toBe(false);
    expect(isOurRule('-j IMDSGUARD-PRE')).toBe(true);
    expect(isOurRule('-j DOCKER')).toBe(false);
  });

  it('reports tables it creates and knows an empty table from a used one', () => {
    const rec = reconcileIptables(new Map(), desiredIptables(rules({ bridges: ['cni0'] }), 'ipv4'));
    expect(rec.createsTables.sort()).toEqual(['filter', 'nat']);
    const empty = parseIptablesSave('*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n');
    expect(isPristineTable(empty.get('nat'))).toBe(true);
    expect(isPristineTable(parseIptablesSave(FOREIGN).get('nat'))).toBe(false);
  });
});

describe('nftables table', () => {
  it('puts every rule in table inet imdsguard with an owner exemption', () => {
    const def = nftTableDefinition(rules({ backend: 'nftables', ipv6: true, exempt: '65534' }));
    expect(def).toMatch(/^table inet imdsguard \{/);
    expect(def).toContain('ip daddr 169.254.169.254 tcp dport 80 meta skuid != 65534 redirect to :16925');
    expect(def).toContain('ip6 daddr fd00:ec2::254 tcp dport 80 meta skuid != 65534 redirect to :16925');
    expect(def).toContain('type nat hook output priority -101');
    expect(def).not.toContain('prerouting');
  });

  it('redirects bridges with DNAT to loopback and drops other bridge traffic to 127/8', () => {
    const body = nftTableBody(rules({ backend: 'nftables', bridges: ['docker0', 'cni0'] }));
    expect(body).toContain(
      'iifname { "docker0", "cni0" } ip daddr 169.254.169.254 tcp dport 80 dnat ip to 127.0.0.1:16925',
    );
    expect(body).toContain('iifname { "docker0", "cni0" } ip daddr 127.0.0.0/8 ct status ! dnat drop');
    expect(body).not.toContain('ip6');
    // With --ipv6, the bridges' IPv6 metadata traffic is refused on input and forward.
    const v6 = nftTableBody(rules({ backend: 'nftables', ipv6: true, bridges: ['docker0'] }));
    const refuse = 'iifname { "docker0" } ip6 daddr fd00:ec2::254 tcp dport 80 reject with tcp reset';
    expect(v6.split('\n').filter((l) => l.trim() === refuse)).toHaveLength(2);
    expect(v6).toContain('type filter hook forward priority -1; policy accept;');
    expect(
      chainRuleCounts(nftTableDefinition(rules({ backend: 'nftables', ipv6: true, bridges: ['docker0'] }))),
    ).toEqual({
      output: 2,
      prerouting: 1,
      input: 2,
      forward: 1,
    });
  });

  it('replaces the table atomically and detects an up-to-date one by its digest', () => {
    const o = rules({ backend: 'nftables' });
    const script = nftInstallScript(o);
    expect(script.split('\n').slice(0, 2)).toEqual(['table inet imdsguard', 'delete table inet imdsguard']);
    // What nft prints back: tabs, and priorities it may rename.
    const listing = nftTableDefinition(o).replace('priority -101', 'priority dstnat - 1');
    expect(listedDigest(listing)).toMatch(/^[0-9a-f]{16}$/);
    expect(nftUpToDate(listing, o)).toBe(true);
    expect(nftUpToDate(listing, { ...o, port: 1 })).toBe(false);
    expect(nftUpToDate(undefined, o)).toBe(false);
    // A flushed chain keeps the comment but is not up to date.
    const flushed = listing.replace(/\n\t\tip daddr 169\.254\.169\.254 [^\n]*/, '');
    expect(listedDigest(flushed)).toBe(listedDigest(listing));
    expect(nftUpToDate(flushed, o)).toBe(false);
  });

  it('parses a listing back into redirect facts', () => {
    const f = parseNftListing(
      nftTableDefinition(rules({ ipv6: true, bridges: ['cbr0'], podInterfaces: [], exempt: '42' })),
    );
    expect(f.v4Redirect).toEqual({ port: 16925, exemptUid: '42' });
    expect(f.v6Redirect).toEqual({ port: 16925, exemptUid: '42' });
    expect(f.dnat).toEqual([{ bridge: 'cbr0', port: 16925 }]);
    expect(f.v6Refused).toEqual(['cbr0']);
    expect(f.loopbackDrop).toEqual(['cbr0']);
    const two = parseNftListing(nftTableDefinition(rules({ bridges: ['docker0', 'cni0'] })));
    expect(two.dnat.map((d) => d.bridge)).toEqual(['cni0', 'docker0']);
    expect(two.v6Refused).toEqual([]);
  });
});

describe('systemd unit', () => {
  it('runs the installed binary as the guard user with least privilege', () => {
    const u = unitFile(install());
    const lines = u.split('\n');
    const has = (l: string) => expect(lines).toContain(l);
    has('User=imdsguard');
    has('AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE');
    has('CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE');
    has('NoNewPrivileges=yes');
    has('ProtectSystem=strict');
    has('ProtectHome=yes');
    has('PrivateTmp=yes');
    has('ReadWritePaths=/var/lib/imdsguard');
    // events.file under /var/log/imdsguard is writable (ProtectSystem=strict makes /var/log read-only).
    has('LogsDirectory=imdsguard');
    has('RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK');
    has('SystemCallFilter=@system-service');
    has('EnvironmentFile=-/etc/imdsguard/env');
    has(
      'ExecStart=/usr/bin/node /usr/lib/node_modules/imdsguard/dist/cli/main.js guard --config /etc/imdsguard/config.yaml --listen 127.0.0.1:16925',
    );
    expect(lines.filter((l) => !l.startsWith('#')).join('\n')).not.toMatch(
      /CAP_NET_ADMIN|CAP_SYS_ADMIN|ProtectProc=invisible/,
    );
  });

  it('fail closed adds the rules before the guard starts and never removes them on stop', () => {
    const u = unitFile(install());
    expect(u).toMatch(
      /^ExecStartPre=\+\/usr\/bin\/node \S+ install --apply --rules-only --backend iptables --user imdsguard --port 16925 --force$/m,
    );
    expect(u).not.toContain('ExecStopPost');
  });

  it('fail open adds the rules once healthy and removes them when the guard stops', () => {
    const u = unitFile(
      install({
        failOpen: undefined,
        failMode: 'open',
        ipv6: true,
        healthUrl: 'http://127.0.0.1:16926/healthz',
      } as Partial<InstallOptions>),
    );
    expect(u).toMatch(
      /^ExecStartPost=\+.* install --apply --rules-only .*--ipv6 --health-timeout 15s --health-url http:\/\/127\.0\.0\.1:16926\/healthz$/m,
    );
    expect(u).toMatch(/^ExecStopPost=\+.* uninstall --apply --rules-only --backend iptables$/m);
    expect(u).toContain('--listen "[::1]:16925"');
    expect(hookInstallArgv(install({ failMode: 'open' }))).not.toContain('--force');
  });

  it('hooks that detect the backend on the host name none (the .deb unit)', () => {
    const closed = unitFile(install({ hooksDetectBackend: true, self: ['/usr/bin/imdsguard'] }));
    expect(closed).toMatch(
      /^ExecStartPre=\+\/usr\/bin\/imdsguard install --apply --rules-only --user imdsguard --port 16925 --force$/m,
    );
    expect(closed).not.toContain('--backend');
    const open = unitFile(install({ hooksDetectBackend: true, failMode: 'open' }));
    expect(open).toMatch(/^ExecStopPost=\+.* uninstall --apply --rules-only$/m);
    expect(open).not.toContain('--backend');
  });

  it('quotes Exec words systemd would split or expand', () => {
    expect(systemdQuote('/opt/my app/main.js')).toBe('"/opt/my app/main.js"');
    expect(systemdQuote('a$b%c')).toBe('"a$$b%%c"');
    expect(execLine(['/usr/bin/node', '[::1]:1'])).toBe('/usr/bin/node "[::1]:1"');
  });
});

describe('config file', () => {
  it('is valid for the guard: event store in the state dir, admin endpoint on the next port', () => {
    for (const o of [install(), install({ bridges: ['docker0'], ipv6: true, port: 65535 })]) {
      const cfg = parseConfig(parseYaml(configFile(o)));
      expect(cfg.events.db).toBe('/var/lib/imdsguard/events.db');
      expect(cfg.guard.stateDir).toBe('/var/lib/imdsguard');
      expect(cfg.admin.listen).toBe(o.port === 65535 ? undefined : '127.0.0.1:16926');
    }
  });
});

describe('install plan', () => {
  it('lists files, user creation and systemd steps, and prints them as a script', () => {
    const plan = buildInstallPlan(
      install({
        user: { name: 'imdsguard', uid: undefined, gid: undefined, create: true },
        exempt: 'imdsguard',
        bridges: ['docker0'],
      }),
    );
    expect(plan.createUser?.argv).toContain('--system');
    expect(plan.files.map((f) => f.path)).toEqual([
      '/etc/imdsguard/config.yaml',
      '/etc/imdsguard/env',
      '/etc/sysctl.d/60-imdsguard.conf',
      '/etc/systemd/system/imdsguard.service',
    ]);
    expect(plan.files.find((f) => f.path.endsWith('60-imdsguard.conf'))?.content).toContain(
      'net.ipv4.conf.docker0.route_localnet = 1',
    );
    expect(plan.systemd.map((c) => c.argv.join(' '))).toEqual([
      'systemctl daemon-reload',
      'systemctl enable imdsguard.service',
    ]);
    const text = renderPlan(plan, { rulesOnly: false });
    expect(text).toContain('useradd --system');
    expect(text).toContain('--uid-owner imdsguard');
    expect(text).toContain("cat > /etc/systemd/system/imdsguard.service <<'EOF'");
  });

  it('prints files under the --root prefix and nft as one script', () => {
    const text = renderPlan(
      buildInstallPlan(install({ backend: 'nftables', root: '/tmp/pkg', systemd: false })),
      {
        rulesOnly: false,
      },
    );
    expect(text).toContain('cat > /tmp/pkg/etc/imdsguard/config.yaml');
    expect(text).toContain("nft -f - <<'EOF'\ntable inet imdsguard\ndelete table inet imdsguard");
    expect(text).not.toContain('systemctl');
  });
});

describe('host option parsing', () => {
  it('validates ports, bridges and roots', () => {
    expect(parsePort(undefined)).toBe(16925);
    expect(() => parsePort('0')).toThrow(/out of range/);
    expect(parseBridges(undefined)).toEqual(['docker0', 'cni0', 'cbr0']);
    expect(parseBridges('br0, br0,veth1')).toEqual(['br0', 'veth1']);
    try {
      parseBridges('eth0; rm -rf /');
      expect.unreachable();
    } catch (e) {
      expect(isImdsguardError(e, 'IMDSGUARD_E_USAGE')).toBe(true);
    }
    expect(parseRoot('pkg', '/build')).toBe('/build/pkg');
    expect(parseRoot(undefined, '/x')).toBe('/');
  });
});
