import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { CLIENT_ENV } from '../support/guard-netns-suite.js';
import {
  AS_GUARD,
  addPod,
  CLEAN_ENV,
  GUARD_PORT,
  HOST_TESTS_ENABLED,
  MAIN,
  type Pod,
  tokenPutArgs,
  waitForLine,
} from '../support/host-node.js';
import {
  cgroupV2Mount,
  enforceHopLimitOne,
  type PodSpec,
  podSpec,
  runInCgroup,
  startSandbox,
  TestCgroups,
  writeKubeletLogs,
} from '../support/k8s-node.js';
import { createNetns, type Netns } from '../support/netns.js';
import { waitFor } from '../support/wait.js';

/**
 * A Kubernetes node without a cluster. Network namespaces: "imds" holds
 * 169.254.169.254 and the emulator (IMDSv2 required) and answers token PUTs with IP TTL 1, as an
 * instance with hop limit 1 does; "node" routes to it through a veth, forwards for its pods, runs the
 * guard as `nobody` with the unit's two ambient capabilities, and has `install --pod-interfaces eni+`
 * applied; two pods are further namespaces attached as the Amazon VPC CNI attaches them (a veth
 * eni..., no bridge). Every client runs in a cgroup named as the kubelet names a container's (below a
 * parent cgroup this test creates), and the guard reads a fake /var/log/pods tree
 * (guard.attribution.podsRoot, containerLogsRoot). Then: pod A, which a rule allows, gets IMDSv2
 * credentials through the guard (botocore and the AWS SDK v3); pod B is refused; a hostNetwork pod is
 * judged as the node; the node's own processes are unaffected; the events name each pod.
 */

const V4_TOKEN = 'http://169.254.169.254/latest/api/token';
const PY = '/usr/bin/python3';
/** The AWS SDK for JavaScript v3's instance credentials, as the demo's client, with a loaded machine's timeout. */
const SDK_V3 = `
import { fromInstanceMetadata } from '@aws-sdk/credential-providers';
try {
  const c = await fromInstanceMetadata({ timeout: 15000, maxRetries: 0 })();
  console.log(JSON.stringify({ ok: c.accessKeyId.length > 0 && c.secretAccessKey.length > 0, sessionToken: c.sessionToken !== undefined }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: err.message }));
}
`;
const V2 = cgroupV2Mount();
const ENABLED = HOST_TESTS_ENABLED && V2 !== undefined && existsSync(PY);
/** The IMDS namespace's admin endpoint (what IMDS was asked), on its own loopback. */
const EMULATOR_ADMIN = 'http://127.0.0.1:1339/requests';
const BOTOCORE = `
import json
from botocore.utils import InstanceMetadataFetcher
c = InstanceMetadataFetcher(timeout=15, num_attempts=1).retrieve_iam_role_credentials()
print(json.dumps({"ok": bool(c.get("access_key")) and bool(c.get("secret_key"))}))
`;
/** Each client is bounded by its own timeouts (curl 5 s, the SDKs 15 s per call); this bounds the process. */
const CLIENT_MS = 60_000;

describe.skipIf(!ENABLED)('a Kubernetes node in network namespaces (hop limit 1, pods by rule)', () => {
  let imds: Netns | undefined;
  let node: Netns | undefined;
  const pods: Pod[] = [];
  let cgroups: TestCgroups | undefined;
  let work = '';
  let guard: ChildProcess | undefined;
  let guardStderr = '';
  const allowed = podSpec('team-a', 'web-7c9d8b-x2k4q', 'app', 'containerd');
  const refused = podSpec('team-b', 'batch-5f6d7c-p9z8w', 'worker', 'cri-o');
  const hostNet = podSpec('kube-system', 'aws-node-h7g2m', 'aws-node', 'containerd');
  // A second container of the allowed pod, which the rule does not name.
  const sidecarId = randomBytes(32).toString('hex');
  const sidecar: PodSpec = {
    ...allowed,
    container: 'proxy',
    containerId: sidecarId,
    cgroup: allowed.cgroup.replace(/cri-containerd-[0-9a-f]{64}/, `cri-containerd-${sidecarId}`),
  };
  let root = '';
  const procs: Record<string, string> = {};
  const sandboxes: ChildProcess[] = [];
  let podA: Pod;
  let podB: Pod;

  const events = (): GuardEvent[] => {
    try {
      return readFileSync(join(work, 'events.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as GuardEvent);
    } catch {
      return [];
    }
  };
  /** For a failure message: the client's stderr and the guard's events since `from` (no secrets in them). */
  const diagnosis = (stderr: string, from: number) =>
    `${stderr}\nguard events:\n${events()
      .slice(from)
      .map((e) => `${e.request.method} ${e.request.path} ${e.status} ${e.rule} ${JSON.stringify(e.caller)}`)
      .join('\n')}`;
  /** The events of requests with this User-Agent, once `n` of them are recorded. */
  const eventsOf = async (agent: string, n = 1): Promise<GuardEvent[]> => {
    const got = () => events().filter((e) => e.request.userAgent === agent);
    await waitFor(() => got().length >= n, `${n} event(s) of ${agent}`);
    return got();
  };
  const status = (stdout: string, code: number | null) =>
    /^HTTP\/[\d.]+ (\d+)/m.exec(stdout)?.[1] ?? `curl exit ${code}`;
  /** curl in a cgroup (and network namespace); returns the status and the User-Agent it sent. */
  const curl = (procsFile: string, ns: Netns, args: string[]) => {
    const agent = `imdsg-k8s-${randomBytes(6).toString('hex')}`;
    const withAgent = args.map((a) => (a === 'AGENT' ? agent : a));
    const r = runInCgroup(procsFile, ns, ['curl', ...withAgent], { env: CLIENT_ENV, timeoutMs: CLIENT_MS });
    return { code: status(r.stdout, r.status), agent };
  };
  /** A token PUT; `maxTime` 5 s where no answer is the expected outcome, else 15 s (the guard may wait 5 s for attribution). */
  const tokenPut = (procsFile: string, ns: Netns, maxTime = 15) =>
    curl(
      procsFile,
      ns,
      tokenPutArgs('AGENT', V4_TOKEN).map((a, i, all) => (all[i - 1] === '--max-time' ? String(maxTime) : a)),
    );
  const v1Get = (procsFile: string, ns: Netns) =>
    curl(procsFile, ns, [
      '-s',
      '-o',
      '/dev/null',
      '-D',
      '-',
      '--max-time',
      '15',
      '-A',
      'AGENT',
      'http://169.254.169.254/latest/meta-data/',
    ]);
  const botocore = (procsFile: string, ns: Netns) => {
    const from = events().length;
    const r = runInCgroup(procsFile, ns, [PY, '-c', BOTOCORE], { env: CLIENT_ENV, timeoutMs: CLIENT_MS });
    return { status: r.status, out: r.stdout.trim(), err: diagnosis(r.stderr, from) };
  };
  const sdkV3 = (procsFile: string, ns: Netns) => {
    const from = events().length;
    const r = runInCgroup(procsFile, ns, [process.execPath, '--input-type=module', '-e', SDK_V3], {
      env: CLIENT_ENV,
      timeoutMs: CLIENT_MS,
      cwd: resolve('.'),
    });
    return { status: r.status, out: r.stdout.trim(), err: diagnosis(r.stderr, from) };
  };
  const imdsAsked = () =>
    (
      JSON.parse((imds as Netns).exec('curl', ['-s', '--max-time', '5', EMULATOR_ADMIN])) as {
        requests: Array<{ path: string; tokenPut: boolean }>;
      }
    ).requests;
  const podOf = (e: GuardEvent | undefined) => e?.caller?.pod;
  /** The cgroup.procs file of a pod's container, or of a service of the node. */
  const cg = (p: PodSpec | 'node') => procs[p === 'node' ? 'node' : `${p.name}/${p.container}`] as string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'imdsg-k8s-'));
    root = mkdtempSync(join(tmpdir(), 'imdsg-k8s-root-'));
    chmodSync(work, 0o755);
    cgroups = new TestCgroups(V2 as string, 'k8s');
    // IMDS one hop from the node: 10.0.0.1 on the IMDS side, 10.0.0.2 on the node's "ens5".
    imds = createNetns('k8s-imds');
    node = createNetns('k8s-node');
    const n = node;
    const i = imds;
    n.exec('ip', ['link', 'add', 'ens5', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', i.name]);
    n.exec('ip', ['addr', 'add', '10.0.0.2/24', 'dev', 'ens5']);
    n.exec('ip', ['link', 'set', 'ens5', 'up']);
    n.exec('ip', ['route', 'add', '169.254.169.254/32', 'via', '10.0.0.1', 'dev', 'ens5']);
    n.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    i.exec('ip', ['addr', 'add', '10.0.0.1/24', 'dev', 'eth0']);
    i.exec('ip', ['link', 'set', 'eth0', 'up']);
    i.exec('ip', ['addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
    i.exec('ip', ['route', 'add', 'default', 'via', '10.0.0.2', 'dev', 'eth0']);
    enforceHopLimitOne(i);
    const emu = i.spawn(
      process.execPath,
      [
        MAIN,
        'emulate',
        '--listen',
        '169.254.169.254:80',
        '--tokens',
        'required',
        '--hop-limit',
        '1',
        '--admin',
        '127.0.0.1:1339',
        '--json',
      ],
      { env: CLEAN_ENV },
    );
    await waitForLine(emu, /"listening"/);
    podA = addPod(n, 'k8s-poda', 1);
    podB = addPod(n, 'k8s-podb', 2);
    pods.push(podA, podB);

    // The kubelet's view of the three pods, and the cgroups of their containers (and of the node).
    const podsRoot = join(work, 'log', 'pods');
    const containerLogsRoot = join(work, 'log', 'containers');
    for (const p of [allowed, sidecar, refused, hostNet]) {
      writeKubeletLogs(p, podsRoot, containerLogsRoot);
      procs[`${p.name}/${p.container}`] = cgroups.make(p.cgroup);
    }
    procs['node'] = cgroups.make('system.slice/node-agent.service');
    sandboxes.push(startSandbox(allowed, cgroups, podA.ns), startSandbox(refused, cgroups, podB.ns));
    writeFileSync(
      join(work, 'guard.yaml'),
      [
        'guard:',
        '  attribution:',
        // a loaded test machine needs more than the default 50 ms for a cold lookup (5 s: the most)
        '    timeoutMs: 5000',
        `    podsRoot: ${podsRoot}`,
        `    containerLogsRoot: ${containerLogsRoot}`,
        `    cniNetworksRoot: ${join(work, 'cni')}`,
        `    vpcCniIpamFile: ${join(work, 'ipam.json')}`,
        '  rules:',
        '    - name: team-a-web',
        '      action: allow',
        '      namespace: team-a',
        '      pod: web-*',
        '      container: app',
        'events:',
        `  file: ${join(work, 'events.jsonl')}`,
        'admin:',
        `  listen: 127.0.0.1:${GUARD_PORT + 1}`,
        '',
      ].join('\n'),
    );
    chmodSync(work, 0o777);
  }, 120_000);

  afterAll(async () => {
    if (guard && guard.exitCode === null) {
      const gone = new Promise((r) => guard?.once('exit', r));
      guard.kill('SIGKILL');
      await gone;
    }
    for (const s of sandboxes) s.kill('SIGKILL');
    for (const p of pods) p.ns.destroy();
    node?.destroy();
    imds?.destroy();
    cgroups?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('hop limit 1 holds for real: without the guard a pod gets no token, the node does', () => {
    // The pod reaches IMDS (a tokenless GET is answered 401, tokens are required)...
    expect(v1Get(cg(allowed), podA.ns).code).toBe('401');
    // ...but the answer to its token PUT leaves IMDS with TTL 1 and dies at the node.
    expect(tokenPut(cg(allowed), podA.ns, 5).code).toBe('curl exit 28');
    expect(tokenPut(cg('node'), node as Netns).code).toBe('200');
  }, 60_000);
  it('the guard on the node, and every pod sent to it (install --pod-interfaces eni+)', async () => {
    const n = node as Netns;
    guard = n.spawn(
      'setpriv',
      [
        ...AS_GUARD,
        process.execPath,
        MAIN,
        'guard',
        '--config',
        join(work, 'guard.yaml'),
        '--listen',
        `127.0.0.1:${GUARD_PORT}`,
      ],
      { env: CLEAN_ENV },
    );
    guard.stderr?.on('data', (c: Buffer) => {
      guardStderr += c.toString();
    });
    await waitForLine(guard, /listening on/);
    const r = n.run(process.execPath, [
      MAIN,
      'install',
      '--apply',
      '--json',
      '--user',
      'nobody',
      '--root',
      root,
      '--backend',
      'nftables',
      '--pod-interfaces',
      'eni+',
    ]);
    expect(r.status, r.stderr).toBe(0);
    for (const p of pods)
      expect(n.exec('cat', [`/proc/sys/net/ipv4/conf/${p.iface}/route_localnet`]).trim()).toBe('1');
  }, 60_000);

  it('pod A, which a rule allows, gets IMDSv2 credentials through the guard (botocore, AWS SDK v3)', async () => {
    const put = tokenPut(cg(allowed), podA.ns);
    expect(put.code).toBe('200');
    const [e] = await eventsOf(put.agent);
    expect(e, guardStderr).toMatchObject({ decision: 'allow', action: 'forwarded', rule: 'team-a-web' });
    expect(podOf(e)).toMatchObject({
      namespace: 'team-a',
      name: allowed.name,
      uid: allowed.uid,
      container: 'app',
      hostNetwork: false,
    });
    const bc = botocore(cg(allowed), podA.ns);
    expect(bc.out, bc.err).toBe('{"ok": true}');
    const js = sdkV3(cg(allowed), podA.ns);
    expect(JSON.parse(js.out || '{}'), js.err).toMatchObject({ ok: true, sessionToken: true });
  }, 120_000);

  it('pod B, and the container of pod A the rule does not name, are refused at once; IMDS never hears of them', async () => {
    const asked = imdsAsked().length;
    for (const [spec, ns] of [
      [refused, podB.ns],
      [sidecar, podA.ns],
    ] as const) {
      const put = tokenPut(cg(spec), ns);
      const get = v1Get(cg(spec), ns);
      const [pe] = await eventsOf(put.agent);
      const [ge] = await eventsOf(get.agent);
      expect(put.code, JSON.stringify(pe)).toBe('403');
      expect(get.code, JSON.stringify(ge)).toBe('401');
      expect(pe, guardStderr).toMatchObject({ decision: 'deny', action: 'refused', rule: 'container-token' });
      expect(ge).toMatchObject({ decision: 'deny', action: 'refused', rule: 'pod-v1' });
      for (const ev of [pe, ge]) {
        expect(podOf(ev)).toMatchObject({
          namespace: spec.namespace,
          name: spec.name,
          container: spec.container,
          hostNetwork: false,
        });
      }
      // A refused pod fails fast: botocore gets no credentials (403, then 401), it does not hang.
      const bc = botocore(cg(spec), ns);
      expect(bc.out, bc.err).toBe('{"ok": false}');
    }
    expect(imdsAsked().length).toBe(asked);
  }, 120_000);

  it('a hostNetwork pod is judged as the node: IMDSv2 through the guard, IMDSv1 refused', async () => {
    const n = node as Netns;
    const put = tokenPut(cg(hostNet), n);
    expect(put.code).toBe('200');
    const [e] = await eventsOf(put.agent);
    expect(e, guardStderr).toMatchObject({ decision: 'allow', action: 'forwarded', rule: 'imdsv2-token' });
    expect(podOf(e)).toMatchObject({
      namespace: 'kube-system',
      name: hostNet.name,
      container: 'aws-node',
      hostNetwork: true,
    });
    const bc = botocore(cg(hostNet), n);
    expect(bc.out, bc.err).toBe('{"ok": true}');
    const get = v1Get(cg(hostNet), n);
    expect(get.code).toBe('401');
    expect((await eventsOf(get.agent))[0]).toMatchObject({ decision: 'deny', rule: 'pod-v1' });
  }, 120_000);

  it("the node's own processes are unaffected, and go through the guard", async () => {
    const n = node as Netns;
    const put = tokenPut(cg('node'), n);
    expect(put.code).toBe('200');
    const [e] = await eventsOf(put.agent);
    expect(e).toMatchObject({ decision: 'allow', rule: 'imdsv2-token' });
    expect(e?.caller?.resolved).toBe('full');
    expect(podOf(e)).toBeUndefined();
    const bc = botocore(cg('node'), n);
    expect(bc.out, bc.err).toBe('{"ok": true}');
    const js = sdkV3(cg('node'), n);
    expect(JSON.parse(js.out || '{}'), js.err).toMatchObject({ ok: true, sessionToken: true });
  }, 120_000);

  it('uninstall takes the redirect out: a pod is back to hop limit 1 (no token without the guard)', () => {
    const n = node as Netns;
    const u = n.run(process.execPath, [MAIN, 'uninstall', '--apply', '--json', '--root', root]);
    expect(u.status, u.stderr).toBe(0);
    for (const p of pods)
      expect(n.exec('cat', [`/proc/sys/net/ipv4/conf/${p.iface}/route_localnet`]).trim()).toBe('0');
    expect(tokenPut(cg(allowed), podA.ns, 5).code).toBe('curl exit 28');
  }, 60_000);
});
