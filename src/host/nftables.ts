import { createHash } from 'node:crypto';
import {
  containerInterfaces,
  IMDS_PORT,
  IMDS_V4,
  IMDS_V6,
  isInterfacePattern,
  RULE_MARK,
  type RuleOptions,
} from './types.js';

/**
 * PURE nftables generation. Everything lives in one table of our own, `inet imdsguard`, whose comment
 * carries a digest of its definition: install compares the digest and changes nothing when it
 * matches, and otherwise replaces the table in one atomic `nft -f` transaction. Uninstall deletes the
 * table, which is exactly what install added.
 */

export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'imdsguard';
/** Just before the standard dstnat priority (-100), so our redirect wins over other nat tables. */
export const NFT_NAT_PRIORITY = -101;

/**
 * The iifname matches for container interfaces: the exact names in one set, then one match per
 * iptables-style pattern ("eni+" is nft's "eni*").
 */
export function nftInterfaceMatches(ifaces: readonly string[]): string[] {
  const exact = ifaces.filter((i) => !isInterfacePattern(i));
  const out = exact.length > 0 ? [`iifname { ${exact.map((b) => `"${b}"`).join(', ')} }`] : [];
  for (const p of ifaces.filter(isInterfacePattern)) out.push(`iifname "${p.slice(0, -1)}*"`);
  return out;
}

/** The body of the table (chains and rules), without the digest comment. */
export function nftTableBody(opts: RuleOptions): string {
  const skuid = /^\d+$/.test(opts.exempt) ? opts.exempt : `"${opts.exempt}"`;
  const redirect = `meta skuid != ${skuid} redirect to :${opts.port}`;
  const lines: string[] = [];
  lines.push('\tchain output {');
  lines.push(`\t\ttype nat hook output priority ${NFT_NAT_PRIORITY}; policy accept;`);
  lines.push(`\t\tip daddr ${IMDS_V4} tcp dport ${IMDS_PORT} ${redirect}`);
  if (opts.ipv6) lines.push(`\t\tip6 daddr ${IMDS_V6} tcp dport ${IMDS_PORT} ${redirect}`);
  lines.push('\t}');
  const ifaces = nftInterfaceMatches(containerInterfaces(opts));
  if (ifaces.length > 0) {
    // One rule per match: exact names share a set, each prefix pattern has its own rule (an older
    // nft cannot hold wildcards in an anonymous set).
    const each = (rule: string) => ifaces.map((m) => `\t\t${m} ${rule}`);
    lines.push('\tchain prerouting {');
    lines.push(`\t\ttype nat hook prerouting priority ${NFT_NAT_PRIORITY}; policy accept;`);
    lines.push(...each(`ip daddr ${IMDS_V4} tcp dport ${IMDS_PORT} dnat ip to 127.0.0.1:${opts.port}`));
    lines.push('\t}');
    // route_localnet lets the interfaces reach 127.0.0.1: drop whatever our DNAT did not produce.
    // IPv6 has no route_localnet, so their IPv6 metadata traffic is refused (see iptables.ts).
    const refuseV6 = each(`ip6 daddr ${IMDS_V6} tcp dport ${IMDS_PORT} reject with tcp reset`);
    lines.push('\tchain input {');
    lines.push('\t\ttype filter hook input priority -1; policy accept;');
    lines.push(...each('ip daddr 127.0.0.0/8 ct status ! dnat drop'));
    if (opts.ipv6) lines.push(...refuseV6);
    lines.push('\t}');
    if (opts.ipv6) {
      lines.push('\tchain forward {');
      lines.push('\t\ttype filter hook forward priority -1; policy accept;');
      lines.push(...refuseV6);
      lines.push('\t}');
    }
  }
  return lines.join('\n');
}

/** Short digest of the table body, stored in the table comment. */
export function nftDigest(body: string): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 16);
}

export function nftComment(body: string): string {
  return `${RULE_MARK} sha256=${nftDigest(body)}`;
}

/** The full table definition. */
export function nftTableDefinition(opts: RuleOptions): string {
  const body = nftTableBody(opts);
  return `table ${NFT_FAMILY} ${NFT_TABLE} {\n\tcomment "${nftComment(body)}"\n${body}\n}\n`;
}

/**
 * The script `nft -f -` runs to install: declaring the table first makes the delete valid whether
 * or not it exists; the whole file is one transaction, so the redirect never disappears in between.
 */
export function nftInstallScript(opts: RuleOptions): string {
  return `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n${nftTableDefinition(opts)}`;
}

export function nftDeleteArgs(): string[] {
  return ['delete', 'table', NFT_FAMILY, NFT_TABLE];
}

export function nftListArgs(): string[] {
  return ['list', 'table', NFT_FAMILY, NFT_TABLE];
}

/** The digest in a `nft list table inet imdsguard` listing, or undefined. */
export function listedDigest(listing: string): string | undefined {
  const m = new RegExp(`comment "${RULE_MARK} sha256=([0-9a-f]+)"`).exec(listing);
  return m?.[1];
}

/**
 * True when the listed table is exactly what these options produce: the digest proves which
 * definition was loaded, and the rule count per chain plus the redirect facts prove nobody flushed or
 * edited a chain since (a hand-run `nft flush chain` keeps the table comment).
 */
export function nftUpToDate(listing: string | undefined, opts: RuleOptions): boolean {
  if (listing === undefined) return false;
  if (listedDigest(listing) !== nftDigest(nftTableBody(opts))) return false;
  const want = nftTableDefinition(opts);
  return (
    JSON.stringify(chainRuleCounts(listing)) === JSON.stringify(chainRuleCounts(want)) &&
    JSON.stringify(parseNftListing(listing)) === JSON.stringify(parseNftListing(want))
  );
}

/** Number of rules in each chain of a table listing. */
export function chainRuleCounts(listing: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let chain: string | undefined;
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    const m = /^chain (\S+) \{$/.exec(line);
    if (m) {
      chain = m[1] as string;
      counts[chain] = 0;
    } else if (line === '}') {
      chain = undefined;
    } else if (chain !== undefined && line !== '' && !/^(type|comment|policy) /.test(line)) {
      counts[chain] = (counts[chain] ?? 0) + 1;
    }
  }
  return counts;
}

/** What a listing of our table says, for doctor. */
export interface NftFacts {
  v4Redirect: { port: number; exemptUid: string } | undefined;
  v6Redirect: { port: number; exemptUid: string } | undefined;
  /** Interfaces (bridges, "eni+" patterns) whose IPv4 metadata traffic is DNATed to 127.0.0.1, with the port (sorted by bridge). */
  dnat: Array<{ bridge: string; port: number }>;
  /** Bridges whose IPv6 metadata traffic is refused (sorted). */
  v6Refused: string[];
  /** Bridges whose other traffic to 127.0.0.0/8 is dropped (sorted). */
  loopbackDrop: string[];
}

/** The interfaces of an `iifname "x"` or `iifname { "x", "y" }` match at the start of a rule. */
const IIFNAME = /^iifname (?:\{ (.+) \}|"([^"]+)") /;

export function parseNftListing(listing: string): NftFacts {
  const facts: NftFacts = {
    v4Redirect: undefined,
    v6Redirect: undefined,
    dnat: [],
    v6Refused: [],
    loopbackDrop: [],
  };
  const add = (list: string[], names: string[]) => {
    for (const n of names) if (!list.includes(n)) list.push(n);
  };
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    const m = /^(ip6?) daddr (\S+) tcp dport 80 meta skuid != "?([^"\s]+)"? .*redirect to :(\d+)/.exec(line);
    if (m) {
      const r = { port: Number(m[4]), exemptUid: m[3] as string };
      if (m[1] === 'ip' && m[2] === IMDS_V4) facts.v4Redirect = r;
      if (m[1] === 'ip6' && m[2] === IMDS_V6) facts.v6Redirect = r;
      continue;
    }
    const i = IIFNAME.exec(line);
    if (!i) continue;
    const names = (i[1] ?? `"${i[2]}"`)
      .split(',')
      .map((n) => n.trim().replace(/"/g, ''))
      .filter(Boolean)
      .map((n) => (n.endsWith('*') ? `${n.slice(0, -1)}+` : n));
    const rest = line.slice(i[0].length);
    const dnat = new RegExp(
      `^ip daddr ${IMDS_V4.replace(/\./g, '\\.')} .*dnat (?:ip )?to 127\\.0\\.0\\.1:(\\d+)`,
    ).exec(rest);
    if (dnat) for (const bridge of names) facts.dnat.push({ bridge, port: Number(dnat[1]) });
    else if (rest.startsWith(`ip6 daddr ${IMDS_V6} `) && /\breject\b/.test(rest)) add(facts.v6Refused, names);
    else if (rest.startsWith('ip daddr 127.0.0.0/8 ') && / drop$/.test(rest)) add(facts.loopbackDrop, names);
  }
  // nft may print set elements in another order than they were written: sort, so listings compare.
  facts.dnat.sort((a, b) => (a.bridge < b.bridge ? -1 : a.bridge > b.bridge ? 1 : 0));
  facts.v6Refused.sort();
  facts.loopbackDrop.sort();
  return facts;
}
