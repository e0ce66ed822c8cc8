import { containerInterfaces, IMDS_PORT, IMDS_V4, IMDS_V6, RULE_MARK, type RuleOptions } from './types.js';

/**
 * PURE iptables/ip6tables rule generation and reconciliation. Rules are written in the canonical form
 * iptables-save prints, so the installed state can be compared with the desired one as text: a second
 * install computes no command, and uninstall removes exactly the rules carrying our mark and our own
 * chains, nothing else.
 */

export type IptFamily = 'ipv4' | 'ipv6';
export type IptTable = 'nat' | 'filter';

export const IPT_TOOLS = {
  ipv4: { tool: 'iptables', save: 'iptables-save', nftFamily: 'ip' },
  ipv6: { tool: 'ip6tables', save: 'ip6tables-save', nftFamily: 'ip6' },
} as const satisfies Record<IptFamily, { tool: string; save: string; nftFamily: string }>;

/**
 * Our chains: nat OUTPUT jumps to IMDSGUARD, nat PREROUTING to IMDSGUARD-PRE, filter INPUT to
 * IMDSGUARD-IN; for IPv6 with container interfaces, filter INPUT and FORWARD to IMDSGUARD-CTR.
 */
export const IPT_CHAINS = {
  output: 'IMDSGUARD',
  prerouting: 'IMDSGUARD-PRE',
  input: 'IMDSGUARD-IN',
  containersV6: 'IMDSGUARD-CTR',
} as const;

const OWN_CHAIN = /^IMDSGUARD(?:-[A-Z]+)?$/;
const COMMENT = `-m comment --comment ${RULE_MARK}`;

export interface IptChain {
  table: IptTable;
  name: string;
  /** Rules in canonical iptables-save form, without the leading "-A CHAIN". */
  rules: string[];
}

export interface IptJump {
  table: IptTable;
  /** A built-in chain (OUTPUT, PREROUTING, INPUT). */
  chain: string;
  rule: string;
}

export interface IptDesired {
  family: IptFamily;
  chains: IptChain[];
  jumps: IptJump[];
}

/** A family's redirect of local traffic to `dst`: our OUTPUT chain (the guard's user exempt) and the jump to it. */
function outputRedirect(dst: string, opts: RuleOptions): { chains: IptChain[]; jumps: IptJump[] } {
  return {
    chains: [
      {
        table: 'nat',
        name: IPT_CHAINS.output,
        rules: [
          `${dst} -m owner ! --uid-owner ${opts.exempt} ${COMMENT} -j REDIRECT --to-ports ${opts.port}`,
        ],
      },
    ],
    jumps: [{ table: 'nat', chain: 'OUTPUT', rule: `${dst} ${COMMENT} -j ${IPT_CHAINS.output}` }],
  };
}

/** The rules one family needs for the given options (empty chains/jumps for an unused family). */
export function desiredIptables(opts: RuleOptions, family: IptFamily): IptDesired {
  const port = String(opts.port);
  // Bridges and pod interfaces alike: iptables matches "eni+" as a prefix itself.
  const ifaces = containerInterfaces(opts);
  if (family === 'ipv6') {
    if (!opts.ipv6) return { family, chains: [], jumps: [] };
    const dst = `-d ${IMDS_V6}/128 -p tcp -m tcp --dport ${IMDS_PORT}`;
    const { chains, jumps } = outputRedirect(dst, opts);
    if (ifaces.length > 0) {
      // IPv6 has no route_localnet: a bridge's traffic cannot be sent to the guard on ::1. Refuse it
      // instead (a TCP reset, so clients fail at once and fall back to IPv4, which is redirected),
      // rather than let containers reach the metadata service around the guard. FORWARD is the path
      // on an instance; INPUT covers a metadata address that is local (a test host, a local proxy).
      chains.push({
        table: 'filter',
        name: IPT_CHAINS.containersV6,
        rules: ifaces.map(
          (i) =>
            `-d ${IMDS_V6}/128 -i ${i} -p tcp -m tcp --dport ${IMDS_PORT} ${COMMENT} -j REJECT --reject-with tcp-reset`,
        ),
      });
      for (const chain of ['INPUT', 'FORWARD']) {
        jumps.push({ table: 'filter', chain, rule: `${dst} ${COMMENT} -j ${IPT_CHAINS.containersV6}` });
      }
    }
    return { family, chains, jumps };
  }
  const dst = `-d ${IMDS_V4}/32 -p tcp -m tcp --dport ${IMDS_PORT}`;
  const { chains, jumps } = outputRedirect(dst, opts);
  if (ifaces.length > 0) {
    chains.push({
      table: 'nat',
      name: IPT_CHAINS.prerouting,
      rules: ifaces.map(
        (i) =>
          `-d ${IMDS_V4}/32 -i ${i} -p tcp -m tcp --dport ${IMDS_PORT} ${COMMENT} -j DNAT --to-destination 127.0.0.1:${port}`,
      ),
    });
    // route_localnet lets the bridge reach 127.0.0.1; this drops everything from a bridge to loopback
    // that our DNAT did not produce (the mitigation ECS uses for the same setup).
    chains.push({
      table: 'filter',
      name: IPT_CHAINS.input,
      rules: ifaces.map(
        (i) => `-d 127.0.0.0/8 -i ${i} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT ${COMMENT} -j DROP`,
      ),
    });
    jumps.push({ table: 'nat', chain: 'PREROUTING', rule: `${dst} ${COMMENT} -j ${IPT_CHAINS.prerouting}` });
    jumps.push({ table: 'filter', chain: 'INPUT', rule: `-d 127.0.0.0/8 ${COMMENT} -j ${IPT_CHAINS.input}` });
  }
  return { family, chains, jumps };
}

// ---------------------------------------------------------------------------------------------------
// Parsing iptables-save output

export interface SavedChain {
  /** ACCEPT/DROP for built-in chains, "-" for user chains. */
  policy: string;
  rules: string[];
}

export interface SavedTable {
  chains: Map<string, SavedChain>;
}

/** Parsed iptables-save output: the tables that exist, in order. */
export type SavedRuleset = Map<string, SavedTable>;

/** Normalizes a rule as printed by iptables-save: single spaces, unquoted simple comment values. */
export function normalizeRule(rule: string): string {
  return rule
    .trim()
    .replace(/\s+/g, ' ')
    .replace(/--comment "([^"\s]+)"/g, '--comment $1');
}

export function parseIptablesSave(text: string): SavedRuleset {
  const tables: SavedRuleset = new Map();
  let current: SavedTable | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      current = { chains: new Map() };
      tables.set(line.slice(1), current);
    } else if (line === 'COMMIT') {
      current = undefined;
    } else if (current && line.startsWith(':')) {
      const [name, policy] = line.slice(1).split(/\s+/);
      if (name) current.chains.set(name, { policy: policy ?? '-', rules: [] });
    } else if (current && line.startsWith('-A ')) {
      const m = /^-A (\S+) ?(.*)$/.exec(line);
      if (!m) continue;
      const name = m[1] as string;
      let chain = current.chains.get(name);
      if (!chain) {
        chain = { policy: '-', rules: [] };
        current.chains.set(name, chain);
      }
      chain.rules.push(normalizeRule(m[2] ?? ''));
    }
  }
  return tables;
}

/** True for a rule install added to a built-in chain: it carries our mark or jumps to our chain. */
export function isOurRule(rule: string): boolean {
  const r = normalizeRule(rule);
  if (new RegExp(`--comment ${RULE_MARK}(?: |$)`).test(r)) return true;
  const jump = / -j (\S+)/.exec(` ${r}`);
  return jump !== null && OWN_CHAIN.test(jump[1] as string);
}

export function isOwnChain(name: string): boolean {
  return OWN_CHAIN.test(name);
}

/** Splits one of our rules into argv. Our rules never contain quotes or spaces inside values. */
export function ruleArgs(rule: string): string[] {
  return normalizeRule(rule).replace(/"/g, '').split(' ');
}

// ---------------------------------------------------------------------------------------------------
// Reconciliation

export interface IptReconcile {
  /** argv for the family's tool (iptables or ip6tables), in order. */
  commands: string[][];
  /** Tables that do not exist yet and will be created by the commands (recorded for uninstall). */
  createsTables: IptTable[];
}

/**
 * Commands that turn `current` into `desired` touching only our chains and our marked rules. With an
 * empty desired (uninstall) it removes every marked rule and every IMDSGUARD chain.
 */
export function reconcileIptables(current: SavedRuleset, desired: IptDesired): IptReconcile {
  const commands: string[][] = [];
  const createsTables: IptTable[] = [];
  const tables = new Set<IptTable>([
    ...desired.chains.map((c) => c.table),
    ...desired.jumps.map((j) => j.table),
  ]);
  for (const t of tables) if (!current.has(t)) createsTables.push(t);

  // 1. Our chains: create or refill before anything jumps to them.
  for (const chain of desired.chains) {
    const existing = current.get(chain.table)?.chains.get(chain.name);
    const want = chain.rules.map(normalizeRule);
    if (existing && sameList(existing.rules, want)) continue;
    if (existing) commands.push(['-t', chain.table, '-F', chain.name]);
    else commands.push(['-t', chain.table, '-N', chain.name]);
    for (const r of want) commands.push(['-t', chain.table, '-A', chain.name, ...ruleArgs(r)]);
  }

  // 2. Marked rules in built-in chains: delete the stale ones, insert the missing ones at the top.
  const builtinByTable = new Map<string, Set<string>>();
  for (const [tname, table] of current) {
    for (const [cname, chain] of table.chains) {
      if (chain.policy === '-') continue;
      if (chain.rules.some(isOurRule)) {
        const set = builtinByTable.get(tname) ?? new Set<string>();
        set.add(cname);
        builtinByTable.set(tname, set);
      }
    }
  }
  for (const j of desired.jumps) {
    const set = builtinByTable.get(j.table) ?? new Set<string>();
    set.add(j.chain);
    builtinByTable.set(j.table, set);
  }
  for (const [tname, chainNames] of builtinByTable) {
    for (const cname of chainNames) {
      const have = (current.get(tname)?.chains.get(cname)?.rules ?? []).filter(isOurRule);
      const want = desired.jumps
        .filter((j) => j.table === tname && j.chain === cname)
        .map((j) => normalizeRule(j.rule));
      for (const r of have) {
        if (!want.includes(r)) commands.push(['-t', tname, '-D', cname, ...ruleArgs(r)]);
      }
      // Duplicates of a wanted rule (a crash between two runs, or a hand-run command): keep one.
      for (const r of want) {
        const count = have.filter((h) => h === r).length;
        for (let i = 1; i < count; i++) commands.push(['-t', tname, '-D', cname, ...ruleArgs(r)]);
        if (count === 0) commands.push(['-t', tname, '-I', cname, '1', ...ruleArgs(r)]);
      }
    }
  }

  // 3. Our chains that are no longer wanted: flush and delete (after the jumps to them are gone).
  for (const [tname, table] of current) {
    for (const [cname, chain] of table.chains) {
      if (chain.policy !== '-' || !isOwnChain(cname)) continue;
      if (desired.chains.some((c) => c.table === tname && c.name === cname)) continue;
      if (chain.rules.length > 0) commands.push(['-t', tname, '-F', cname]);
      commands.push(['-t', tname, '-X', cname]);
    }
  }
  return { commands, createsTables };
}

/**
 * True when a table holds nothing but empty built-in chains with an ACCEPT policy: the state in which
 * iptables-nft creates it. Uninstall deletes such a table only if install created it.
 */
export function isPristineTable(table: SavedTable | undefined): boolean {
  if (!table) return false;
  for (const chain of table.chains.values()) {
    if (chain.policy !== 'ACCEPT' || chain.rules.length > 0) return false;
  }
  return true;
}

/** The commands that create the whole desired state from scratch (what `install` prints). */
export function scratchIptables(desired: IptDesired): string[][] {
  return reconcileIptables(new Map(), desired).commands;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
