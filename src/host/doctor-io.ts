import { spawn } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { loadSockDiag } from '../guard/attribution/sock-diag.js';
import type { CheckId } from './doctor.js';
import {
  type DoctorFacts,
  type GuardProcess,
  iptablesBridgeRules,
  iptablesRedirect,
  listeningInodes,
  nftBridgeRules,
  nftRedirects,
  type Outcome,
  parseProcStatus,
  type RedirectFacts,
} from './doctor-facts.js';
import { routeLocalnetPath } from './files.js';
import { routeLocalnetStates } from './interfaces-io.js';
import { IPT_TOOLS, parseIptablesSave } from './iptables.js';
import { nftListArgs } from './nftables.js';
import { checkHealth, type HealthTarget, probe } from './probe-io.js';
import { installedBackends } from './rules-io.js';
import type { CommandRunner } from './runner.js';
import { lookupUser } from './system-io.js';
import { type Backend, DEFAULT_SYSCTL_ROOT, IMDS_V4, isInterfacePattern } from './types.js';

/** I/O half of doctor: reads the firewall, /proc and probes HTTP, returning facts for evaluateDoctor. */

/** Most /proc/PID/fd entries doctor reads while looking for the guard's socket. */
export const MAX_FD_SCAN = 500_000;
/** Timeout of the IMDS probe run as the guard user (ms). */
export const IMDS_PROBE_TIMEOUT_MS = 8_000;

export async function readRedirects(
  runner: CommandRunner,
  backend: Backend | undefined,
): Promise<RedirectFacts> {
  const backends = backend ? [backend] : await installedBackends(runner);
  for (const b of backends) {
    if (b === 'nftables') {
      const l = await runner.run(['nft', ...nftListArgs()]);
      const listing = l.code === 0 ? l.stdout : undefined;
      const r = nftRedirects(listing);
      if (r.v4 || r.v6) return { backend: b, v4: r.v4, v6: r.v6, bridges: nftBridgeRules(listing) };
    } else {
      const [v4, v6] = await Promise.all(
        (['ipv4', 'ipv6'] as const).map(async (fam) => {
          const r = await runner.run([IPT_TOOLS[fam].save]);
          return r.code === 0 ? parseIptablesSave(r.stdout) : undefined;
        }),
      );
      const r4 = v4 && iptablesRedirect(v4, 'ipv4');
      const r6 = v6 && iptablesRedirect(v6, 'ipv6');
      if (r4 || r6) return { backend: b, v4: r4, v6: r6, bridges: iptablesBridgeRules(v4, v6) };
    }
  }
  return { backend: backends[0], v4: undefined, v6: undefined };
}

/** The process listening on the guard port (its socket inode found in /proc/PID/fd). */
export async function findGuardProcess(port: number): Promise<GuardProcess | undefined> {
  const inodes = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(f, 'utf8').catch(() => '');
    for (const i of listeningInodes(text, port)) inodes.add(`socket:[${i}]`);
  }
  if (inodes.size === 0) return undefined;
  let scanned = 0;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  // The socket lives in our network namespace: skip processes of other namespaces.
  const ourNet = await readlink('/proc/self/ns/net').catch(() => undefined);
  for (const pid of pids) {
    if (ourNet !== undefined && (await readlink(`/proc/${pid}/ns/net`).catch(() => ourNet)) !== ourNet)
      continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if (++scanned > MAX_FD_SCAN) return undefined;
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (!inodes.has(target)) continue;
      const status = parseProcStatus(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''));
      if (status) return { pid: Number(pid), ...status };
    }
  }
  return undefined;
}

function outcome(p: Promise<{ status: number }>): Promise<Outcome> {
  return p.then(
    (r) => r.status,
    (e: Error) => e.message,
  );
}

/** Token PUT and a GET through the redirect target (the guard port), Host set to the IMDS address. */
export async function probeViaGuard(port: number): Promise<DoctorFacts['viaGuard']> {
  const base = `http://127.0.0.1:${port}`;
  const host = { Host: IMDS_V4 };
  let token: string | undefined;
  const put = await outcome(
    probe({
      url: `${base}/latest/api/token`,
      method: 'PUT',
      headers: { ...host, 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
    }).then((r) => {
      if (r.status === 200) token = r.body.trim();
      return r;
    }),
  );
  if (token === undefined) return { put, get: undefined };
  const get = await outcome(
    probe({
      url: `${base}/latest/meta-data/instance-id`,
      headers: { ...host, 'X-aws-ec2-metadata-token': token },
    }),
  );
  return { put, get };
}

/**
 * What IMDS itself allows, asked as the guard user (whom the redirect exempts) by a child Node
 * process: a token PUT and, unless disabled, one tokenless GET. Only status codes come back.
 */
const IMDS_PROBE_SCRIPT = `
const http = require('node:http');
const req = (method, path, headers) => new Promise((resolve) => {
  const r = http.request({ host: ${JSON.stringify(IMDS_V4)}, port: 80, path, method, headers, agent: false, timeout: 2500 },
    (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
  r.on('timeout', () => r.destroy(new Error('timed out')));
  r.on('error', (e) => resolve(e.code || e.message));
  r.end();
});
(async () => {
  const put = await req('PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '60' });
  const tokenless = process.argv[1] === 'v1' ? await req('GET', '/latest/meta-data/', {}) : null;
  process.stdout.write(JSON.stringify({ put, tokenless }));
})();
`;

export async function probeImdsAs(
  uid: number | undefined,
  gid: number | undefined,
  probeV1: boolean,
  isRoot: boolean,
): Promise<DoctorFacts['imds']> {
  if (!isRoot)
    return {
      skipped: 'doctor is not root, so it cannot ask IMDS as the guard user',
      put: undefined,
      tokenless: undefined,
    };
  if (uid === undefined || gid === undefined) {
    return { skipped: 'the guard user does not exist', put: undefined, tokenless: undefined };
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', IMDS_PROBE_SCRIPT, probeV1 ? 'v1' : 'no-v1'], {
      uid,
      gid,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: IMDS_PROBE_TIMEOUT_MS,
      cwd: '/',
      env: { PATH: '/usr/bin:/bin' },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      if (out.length < 4096) out += c.toString();
    });
    child.on('error', (e) =>
      resolve({ skipped: `probe failed: ${e.message}`, put: undefined, tokenless: undefined }),
    );
    child.on('close', () => {
      try {
        const r = JSON.parse(out) as { put: Outcome; tokenless: Outcome | null };
        resolve({ skipped: undefined, put: r.put, tokenless: r.tokenless ?? undefined });
      } catch {
        resolve({ skipped: 'the probe process gave no answer', put: undefined, tokenless: undefined });
      }
    });
  });
}

export interface GatherOptions {
  port: number;
  userName: string;
  ipv6Expected: boolean;
  backend: Backend | undefined;
  health: HealthTarget;
  probeV1: boolean;
  /** Default: whether this process runs as root. */
  isRoot?: boolean;
  /** Container bridges and pod interface patterns install recorded (--containers, --pod-interfaces). */
  interfaces?: readonly string[];
  /** Where the kernel's sysctl tree is (default /proc/sys). */
  sysctlRoot?: string;
  /**
   * The checks to run (default: all). Facts only other checks need are not gathered: no IMDS probe
   * as the guard user (and so no IMDSv1 call) unless imds-settings is asked for.
   */
  checks?: ReadonlySet<CheckId>;
}

const NOT_ASKED = 'not checked';

/** net.ipv4.conf.BRIDGE.route_localnet for each bridge: undefined when the bridge does not exist. */
async function routeLocalnet(
  bridges: readonly string[],
  sysctlRoot: string,
): Promise<Record<string, boolean | undefined>> {
  const out: Record<string, boolean | undefined> = {};
  await Promise.all(
    bridges.map(async (b) => {
      try {
        out[b] = (await readFile(routeLocalnetPath(b, sysctlRoot), 'utf8')).trim() === '1';
      } catch {
        out[b] = undefined;
      }
    }),
  );
  return out;
}

export async function gatherDoctorFacts(runner: CommandRunner, o: GatherOptions): Promise<DoctorFacts> {
  const want = (...ids: CheckId[]) => o.checks === undefined || ids.some((id) => o.checks?.has(id));
  const [user, redirects, health, guard, viaGuard] = await Promise.all([
    lookupUser(runner, o.userName),
    want('redirect-v4', 'redirect-v6', 'containers', 'guard-exempt', 'guard-health')
      ? readRedirects(runner, o.backend)
      : ({ backend: o.backend, v4: undefined, v6: undefined } as RedirectFacts),
    want('guard-health') ? checkHealth(o.health) : { healthy: false, detail: NOT_ASKED },
    want('capabilities', 'guard-exempt') ? findGuardProcess(o.port) : undefined,
    want('imds-via-guard') ? probeViaGuard(o.port) : { put: NOT_ASKED, get: undefined },
  ]);
  const isRoot = o.isRoot ?? process.getuid?.() === 0;
  if (!isRoot && !redirects.v4 && !redirects.v6) redirects.readable = false;
  const imds = want('imds-settings')
    ? await probeImdsAs(user?.uid, user?.gid, o.probeV1, isRoot)
    : { skipped: NOT_ASKED, put: undefined, tokenless: undefined };
  const expected = [...(o.interfaces ?? [])];
  const seen = [...new Set([...expected, ...(redirects.bridges?.dnat ?? []).map((d) => d.bridge)])];
  const sysctlRoot = o.sysctlRoot ?? DEFAULT_SYSCTL_ROOT;
  const patterns = seen.filter(isInterfacePattern);
  return {
    port: o.port,
    user: { name: o.userName, uid: user?.uid },
    ipv6Expected: o.ipv6Expected || redirects.v6 !== undefined,
    redirects,
    health: { url: o.health.url, healthy: health.healthy, detail: health.detail },
    guard,
    viaGuard,
    imds,
    sockDiag: want('attribution') ? sockDiagFact() : { available: false, reason: NOT_ASKED },
    containers: {
      expected,
      routeLocalnet: await routeLocalnet(
        seen.filter((i) => !isInterfacePattern(i)),
        sysctlRoot,
      ),
      podInterfaces: patterns.length > 0 ? await routeLocalnetStates(patterns, sysctlRoot) : {},
    },
  };
}

function sockDiagFact(): DoctorFacts['sockDiag'] {
  const loaded = loadSockDiag();
  return loaded.diag ? { available: true } : { available: false, reason: loaded.reason ?? 'unknown' };
}
