import { IPT_CHAINS, isOurRule, normalizeRule, type SavedRuleset } from './iptables.js';
import { parseNftListing } from './nftables.js';
import { type Backend, IMDS_V4, IMDS_V6 } from './types.js';

/**
 * PURE: the facts doctor gathers (doctor-io.ts) and the readers that turn firewall listings and /proc
 * text into them. doctor.ts judges the facts.
 */

/** One redirect as found in the firewall. exempt: the uid in the owner match (undefined: none). */
export interface RedirectFact {
  port: number;
  exempt: string | undefined;
}

export interface RedirectFacts {
  backend: Backend | undefined;
  /** False when the firewall could not be read (doctor is not root). */
  readable?: boolean;
  v4: RedirectFact | undefined;
  v6: RedirectFact | undefined;
  /** The container rules found with the redirect (install --containers). */
  bridges?: BridgeRules;
}

/**
 * What the firewall does with metadata traffic arriving on container interfaces: bridges by name, pod
 * interfaces by pattern ("eni+", as iptables writes it; nft's "eni*" is read back as "eni+").
 */
export interface BridgeRules {
  /** Interfaces whose IPv4 metadata traffic is DNATed to the guard on 127.0.0.1, with the port. */
  dnat: Array<{ bridge: string; port: number }>;
  /** Bridges whose IPv6 metadata traffic is refused (it cannot be redirected). */
  v6Refused: string[];
  /** Bridges whose other traffic to 127.0.0.0/8 is dropped (route_localnet would expose loopback). */
  loopbackDrop: string[];
}

export interface ContainerFacts {
  /** Bridges and pod interface patterns ("eni+") install recorded; empty when it recorded none. */
  expected: string[];
  /** net.ipv4.conf.BRIDGE.route_localnet: true, false, or undefined when the bridge does not exist. */
  routeLocalnet: Record<string, boolean | undefined>;
  /** route_localnet of every existing interface that matches a pod interface pattern. */
  podInterfaces?: Record<string, boolean>;
}

/** Outcome of an HTTP exchange: a status code or an error reason (ECONNREFUSED, timed out...). */
export type Outcome = number | string;

export interface GuardProcess {
  pid: number;
  uid: number;
  /** Effective and ambient capability sets (bit masks from /proc/PID/status). */
  capEff: bigint;
  capAmb: bigint;
}

export interface DoctorFacts {
  port: number;
  user: { name: string; uid: number | undefined };
  ipv6Expected: boolean;
  redirects: RedirectFacts;
  health: { url: string; healthy: boolean; detail: string };
  /** undefined: no process listens on the guard port (or /proc cannot be read). */
  guard: GuardProcess | undefined;
  viaGuard: { put: Outcome; get: Outcome | undefined };
  /** IMDS as the exempt guard user sees it; skipped names why the probe did not run. */
  imds: { skipped: string | undefined; put: Outcome | undefined; tokenless: Outcome | undefined };
  /** Whether this installation finds client sockets by sock_diag (the native addon), and if not why. */
  sockDiag: { available: boolean; reason?: string };
  containers: ContainerFacts;
}

export const CAP_DAC_READ_SEARCH = 2n;
export const CAP_SYS_PTRACE = 19n;

// ---------------------------------------------------------------------------------------------------
// Reading the firewall

/** Finds our IPv4 or IPv6 redirect in parsed iptables-save output (only when OUTPUT jumps to it). */
export function iptablesRedirect(
  saved: SavedRuleset | undefined,
  family: 'ipv4' | 'ipv6',
): RedirectFact | undefined {
  const nat = saved?.get('nat');
  if (!nat) return undefined;
  const dst = family === 'ipv4' ? `${IMDS_V4}/32` : `${IMDS_V6}/128`;
  const jumps = (nat.chains.get('OUTPUT')?.rules ?? []).filter(
    (r) => isOurRule(r) && r.includes(`-j ${IPT_CHAINS.output}`) && r.includes(`-d ${dst}`),
  );
  if (jumps.length === 0) return undefined;
  for (const raw of nat.chains.get(IPT_CHAINS.output)?.rules ?? []) {
    const r = normalizeRule(raw);
    if (!r.includes(`-d ${dst}`)) continue;
    const port = / -j REDIRECT --to-ports (\d+)/.exec(r);
    if (!port) continue;
    const owner = /-m owner ! --uid-owner (\S+)/.exec(r);
    return { port: Number(port[1]), exempt: owner?.[1] };
  }
  return undefined;
}

/** Our container rules in parsed iptables-save output (IPv4 DNAT, IPv6 refusal), when jumped to. */
export function iptablesBridgeRules(v4: SavedRuleset | undefined, v6: SavedRuleset | undefined): BridgeRules {
  const out: BridgeRules = { dnat: [], v6Refused: [], loopbackDrop: [] };
  const jumped = (saved: SavedRuleset | undefined, table: string, chain: string, target: string) =>
    (saved?.get(table)?.chains.get(chain)?.rules ?? []).some(
      (r) => isOurRule(r) && r.includes(`-j ${target}`),
    );
  if (jumped(v4, 'nat', 'PREROUTING', IPT_CHAINS.prerouting)) {
    for (const raw of v4?.get('nat')?.chains.get(IPT_CHAINS.prerouting)?.rules ?? []) {
      const m = /-i (\S+) .*-j DNAT --to-destination 127\.0\.0\.1:(\d+)/.exec(normalizeRule(raw));
      if (m) out.dnat.push({ bridge: m[1] as string, port: Number(m[2]) });
    }
  }
  if (jumped(v4, 'filter', 'INPUT', IPT_CHAINS.input)) {
    for (const raw of v4?.get('filter')?.chains.get(IPT_CHAINS.input)?.rules ?? []) {
      const m = /-d 127\.0\.0\.0\/8 -i (\S+) .*-j DROP/.exec(normalizeRule(raw));
      if (m) out.loopbackDrop.push(m[1] as string);
    }
  }
  if (jumped(v6, 'filter', 'FORWARD', IPT_CHAINS.containersV6)) {
    for (const raw of v6?.get('filter')?.chains.get(IPT_CHAINS.containersV6)?.rules ?? []) {
      const m = /-i (\S+) .*-j REJECT/.exec(normalizeRule(raw));
      if (m) out.v6Refused.push(m[1] as string);
    }
  }
  return out;
}

/** Our container rules in a listing of table inet imdsguard. */
export function nftBridgeRules(listing: string | undefined): BridgeRules {
  const { dnat, v6Refused, loopbackDrop } = parseNftListing(listing ?? '');
  return { dnat, v6Refused, loopbackDrop };
}

export function nftRedirects(listing: string | undefined): { v4?: RedirectFact; v6?: RedirectFact } {
  if (listing === undefined) return {};
  const f = parseNftListing(listing);
  const out: { v4?: RedirectFact; v6?: RedirectFact } = {};
  if (f.v4Redirect) out.v4 = { port: f.v4Redirect.port, exempt: f.v4Redirect.exemptUid };
  if (f.v6Redirect) out.v6 = { port: f.v6Redirect.port, exempt: f.v6Redirect.exemptUid };
  return out;
}

/** Parses CapEff and CapAmb (hex) and the real uid from /proc/PID/status. */
export function parseProcStatus(text: string): { uid: number; capEff: bigint; capAmb: bigint } | undefined {
  const uid = /^Uid:\s+(\d+)/m.exec(text);
  const eff = /^CapEff:\s+([0-9a-f]+)/m.exec(text);
  const amb = /^CapAmb:\s+([0-9a-f]+)/m.exec(text);
  if (!uid || !eff) return undefined;
  return { uid: Number(uid[1]), capEff: BigInt(`0x${eff[1]}`), capAmb: amb ? BigInt(`0x${amb[1]}`) : 0n };
}

/**
 * Inodes of TCP sockets listening on a port, from /proc/net/tcp or /proc/net/tcp6 text.
 * Columns: sl local_address rem_address st ... inode (10th field); st 0A is LISTEN.
 */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    if (f[3] !== '0A') continue;
    if (!f[1]?.endsWith(`:${hexPort}`)) continue;
    if (f[9] && f[9] !== '0') out.push(f[9]);
  }
  return out;
}
