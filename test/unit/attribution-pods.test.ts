import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProcResolver, type ProcResolverOptions } from '../../src/guard/attribution/index.js';
import {
  parseContainerLogName,
  parseHostLocalFile,
  parsePodDirName,
  parseVpcCniIpam,
} from '../../src/guard/attribution/pods/names.js';
import { CONTAINER_NS, conn, FakeProcTree } from '../support/fake-proc.js';

/**
 * Pod identity (caller.pod): the kubelet's and the CNI plugins' on-disk records, parsed from samples
 * of what they write, and the resolver naming pods over a fake node (a fake /proc, /var/log/pods,
 * /var/log/containers, CNI state and cgroup tree).
 */

const UID = '3b5e6c1d-8f2a-4c7e-9d1b-2a3c4d5e6f70';
const APP = 'a'.repeat(40) + '0123456789abcdef01234567';
const SIDECAR = 'd'.repeat(64);
const SANDBOX = 'b'.repeat(64);
const STATIC_UID = '0f8c6b3c9e1d4a5b6c7d8e9f0a1b2c3d';

describe('the kubelet log directories', () => {
  it('pod directories: NAMESPACE_NAME_UID, static pods with a hash UID; anything else is not one', () => {
    expect(parsePodDirName(`kube-system_aws-node-7x2kq_${UID}`)).toEqual({
      namespace: 'kube-system',
      name: 'aws-node-7x2kq',
      uid: UID,
    });
    expect(parsePodDirName(`kube-system_kube-apiserver-ip-10-0-1-2.ec2.internal_${STATIC_UID}`)).toEqual({
      namespace: 'kube-system',
      name: 'kube-apiserver-ip-10-0-1-2.ec2.internal',
      uid: STATIC_UID,
    });
    for (const bad of [
      UID,
      `default_${UID}`,
      `default_web_not-a-uid`,
      `Default_web_${UID}`,
      `default__${UID}`,
      `../etc_web_${UID}`,
      '.',
    ]) {
      expect(parsePodDirName(bad), bad).toBeUndefined();
    }
  });

  it('container log symlinks: POD_NAMESPACE_CONTAINER-ID.log', () => {
    expect(parseContainerLogName(`web-5d9c7b8f6d-x7k2p_team-a_app-${APP}.log`)).toEqual({
      pod: 'web-5d9c7b8f6d-x7k2p',
      namespace: 'team-a',
      container: 'app',
      id: APP,
    });
    // a container name with dashes: the id is the last 64 hex digits
    expect(parseContainerLogName(`aws-node-7x2kq_kube-system_aws-vpc-cni-init-${SIDECAR}.log`)).toMatchObject(
      {
        container: 'aws-vpc-cni-init',
        id: SIDECAR,
      },
    );
    for (const bad of [`web_team-a_app-${APP}`, `web_team-a_app-${APP.slice(1)}.log`, `web_app-${APP}.log`]) {
      expect(parseContainerLogName(bad), bad).toBeUndefined();
    }
  });
});

describe("the CNI plugins' address records", () => {
  it('host-local: the sandbox id on the first line (and the interface on the second)', () => {
    expect(parseHostLocalFile(`${SANDBOX}\neth0`)).toEqual({ sandboxId: SANDBOX });
    expect(parseHostLocalFile(`${SANDBOX}\n`)).toEqual({ sandboxId: SANDBOX });
    expect(parseHostLocalFile('lock')).toBeUndefined();
    expect(parseHostLocalFile('')).toBeUndefined();
  });

  it("the VPC CNI's ipam.json: address -> sandbox, namespace and name; bad entries skipped", () => {
    const doc = {
      version: 'vpc-cni-ipam/1',
      allocations: [
        {
          networkName: 'aws-cni',
          containerID: SANDBOX,
          ifName: 'eth0',
          ipv4: '10.0.5.9',
          allocationTimestamp: 1733270000000000000,
          metadata: { k8sPodNamespace: 'team-a', k8sPodName: 'web-5d9c7b8f6d-x7k2p' },
        },
        {
          networkName: 'aws-cni',
          containerID: SIDECAR,
          ifName: 'eth0',
          ipv6: '2600:1f14:abc::7',
          metadata: {},
        },
        { ipv4: 42 },
        'junk',
        {
          containerID: 'not-hex',
          ipv4: '10.0.5.10',
          metadata: { k8sPodNamespace: 'Bad_NS', k8sPodName: 'x' },
        },
      ],
    };
    const m = parseVpcCniIpam(JSON.stringify(doc));
    expect(m.get('10.0.5.9')).toEqual({
      sandboxId: SANDBOX,
      namespace: 'team-a',
      name: 'web-5d9c7b8f6d-x7k2p',
    });
    expect(m.get('2600:1f14:abc:0:0:0:0:7')).toEqual({ sandboxId: SIDECAR });
    expect(m.get('10.0.5.10')).toEqual({ name: 'x' });
    expect(parseVpcCniIpam('{not json').size).toBe(0);
    expect(parseVpcCniIpam('{"allocations": 7}').size).toBe(0);
  });
});

let dir: string;
let tree: FakeProcTree;
let roots: Required<
  Pick<
    ProcResolverOptions,
    'podsRoot' | 'containerLogsRoot' | 'cniNetworksRoot' | 'vpcCniIpamFile' | 'cgroupRoot'
  >
>;
const resolvers: Array<{ close(): Promise<void> }> = [];

function resolver(extra: ProcResolverOptions = {}) {
  const r = createProcResolver({
    procRoot: tree.root,
    passwdPath: tree.passwd,
    refreshIntervalMs: 0,
    endianness: 'LE',
    budgetMs: 10_000,
    ...roots,
    ...extra,
  });
  resolvers.push(r);
  return r;
}

/** A pod as the kubelet logs it: its directory with one directory per container, and the symlinks. */
function kubeletPod(namespace: string, name: string, uid: string, containers: Record<string, string>): void {
  for (const [container, id] of Object.entries(containers)) {
    mkdirSync(join(roots.podsRoot, `${namespace}_${name}_${uid}`, container), { recursive: true });
    writeFileSync(join(roots.podsRoot, `${namespace}_${name}_${uid}`, container, '0.log'), '');
    symlinkSync(
      join(roots.podsRoot, `${namespace}_${name}_${uid}`, container, '0.log'),
      join(roots.containerLogsRoot, `${name}_${namespace}_${container}-${id}.log`),
    );
  }
}

const podCgroup = (uid: string, id: string) =>
  `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-${id}.scope\n`;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imdsg-fakenode-'));
  tree = new FakeProcTree(dir);
  roots = {
    podsRoot: join(dir, 'var/log/pods'),
    containerLogsRoot: join(dir, 'var/log/containers'),
    cniNetworksRoot: join(dir, 'var/lib/cni/networks'),
    vpcCniIpamFile: join(dir, 'var/run/aws-node/ipam.json'),
    cgroupRoot: join(dir, 'sys/fs/cgroup'),
  };
  for (const d of [roots.podsRoot, roots.containerLogsRoot, roots.cniNetworksRoot, roots.cgroupRoot])
    mkdirSync(d, { recursive: true });
  tree.proc({ pid: 1, ppid: 0, uid: 0, exe: '/usr/lib/systemd/systemd', fds: { 0: '/dev/null' } });
  kubeletPod('team-a', 'web-5d9c7b8f6d-x7k2p', UID, { app: APP, sidecar: SIDECAR });
});

afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The pod's sandbox (pause) and its app container in the pod's network namespace, with a socket. */
function podProcesses(): void {
  tree.proc({
    pid: 700,
    ppid: 1,
    uid: 65535,
    exe: '/pause',
    netns: CONTAINER_NS,
    cgroup: podCgroup(UID, SANDBOX),
  });
  tree.proc({
    pid: 701,
    ppid: 1,
    uid: 1000,
    exe: '/usr/local/bin/app',
    netns: CONTAINER_NS,
    cgroup: podCgroup(UID, APP),
    fds: { 3: 'socket:[7001]' },
  });
}

describe('the resolver names the pod', () => {
  it("from the caller's cgroup: namespace, name, UID and container name from the kubelet logs", async () => {
    podProcesses();
    tree.tables('700', [['10.244.1.7:41000', '169.254.169.254:80', 0x01, 1000, 7001]], []);
    const caller = await resolver().resolve(conn('10.244.1.7', 41000));
    expect(caller).toMatchObject({
      resolved: 'full',
      pid: 701,
      netns: 'other',
      container: { id: APP, runtime: 'containerd', podUid: UID },
      pod: {
        namespace: 'team-a',
        name: 'web-5d9c7b8f6d-x7k2p',
        uid: UID,
        container: 'app',
        hostNetwork: false,
        source: 'cgroup',
      },
    });
  });

  it('a hostNetwork pod: the caller shares the node network namespace', async () => {
    const agent = '9'.repeat(64);
    kubeletPod('kube-system', 'aws-node-7x2kq', STATIC_UID, { 'aws-node': agent });
    tree.proc({
      pid: 710,
      ppid: 1,
      uid: 0,
      exe: '/app/aws-k8s-agent',
      cgroup: podCgroup(STATIC_UID, agent),
      fds: { 4: 'socket:[7101]' },
    });
    tree.tables('', [['127.0.0.1:41010', '127.0.0.1:8080', 0x01, 0, 7101]], []);
    expect((await resolver().resolve(conn('127.0.0.1', 41010))).pod).toEqual({
      namespace: 'kube-system',
      name: 'aws-node-7x2kq',
      uid: STATIC_UID,
      container: 'aws-node',
      hostNetwork: true,
      source: 'cgroup',
    });
  });

  it('without the kubelet logs: only the UID; without the symlinks: the only container directory', async () => {
    podProcesses();
    tree.tables('700', [['10.244.1.7:41001', '169.254.169.254:80', 0x01, 1000, 7001]], []);
    const noLogs = await resolver({
      podsRoot: join(dir, 'nope'),
      containerLogsRoot: join(dir, 'nope2'),
    }).resolve(conn('10.244.1.7', 41001));
    expect(noLogs.pod).toEqual({ uid: UID, hostNetwork: false, source: 'cgroup' });
    // No symlinks: the pod's only container directory names it; with two, nothing is guessed.
    rmSync(roots.containerLogsRoot, { recursive: true });
    const two = await resolver().resolve(conn('10.244.1.7', 41001));
    expect(two.pod).toMatchObject({ name: 'web-5d9c7b8f6d-x7k2p' });
    expect(two.pod?.container).toBeUndefined();
    rmSync(join(roots.podsRoot, `team-a_web-5d9c7b8f6d-x7k2p_${UID}`, 'sidecar'), { recursive: true });
    expect((await resolver().resolve(conn('10.244.1.7', 41001))).pod?.container).toBe('app');
  });

  it('a pod that starts after the first listing is found (the listing is read again on a miss)', async () => {
    const r = resolver();
    podProcesses();
    tree.tables('700', [['10.244.1.7:41002', '169.254.169.254:80', 0x01, 1000, 7001]], []);
    expect((await r.resolve(conn('10.244.1.7', 41002))).pod?.name).toBe('web-5d9c7b8f6d-x7k2p');
    const uid2 = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
    kubeletPod('team-b', 'job-abc12', uid2, { main: 'e'.repeat(64) });
    tree.proc({
      pid: 720,
      ppid: 1,
      uid: 1000,
      exe: '/bin/job',
      netns: CONTAINER_NS,
      cgroup: podCgroup(uid2, 'e'.repeat(64)),
      fds: { 3: 'socket:[7201]' },
    });
    tree.tables('700', [['10.244.1.7:41003', '169.254.169.254:80', 0x01, 1000, 7201]], []);
    // the first listing is less than a second old: the next read waits for that
    await new Promise((res) => setTimeout(res, 1100));
    expect((await r.resolve(conn('10.244.1.7', 41003))).pod).toMatchObject({
      namespace: 'team-b',
      name: 'job-abc12',
      container: 'main',
    });
  });

  it('from its network namespace when the socket has no owner left (the client exited)', async () => {
    podProcesses();
    // closed: inode 0 in the pod namespace's table
    tree.tables('700', [['10.244.1.7:41004', '169.254.169.254:80', 0x08, 1000, 0]], []);
    const caller = await resolver().resolve(conn('10.244.1.7', 41004));
    expect(caller).toMatchObject({
      resolved: 'partial',
      uid: 1000,
      netns: 'other',
      pod: {
        namespace: 'team-a',
        name: 'web-5d9c7b8f6d-x7k2p',
        uid: UID,
        hostNetwork: false,
        source: 'netns',
      },
    });
    expect(caller.pod?.container).toBeUndefined();
  });

  it('from its address in host-local IPAM state, through the sandbox cgroup', async () => {
    // No process of the pod in sight; the CNI recorded the address and the sandbox's cgroup exists.
    mkdirSync(join(roots.cniNetworksRoot, 'cbr0'), { recursive: true });
    writeFileSync(join(roots.cniNetworksRoot, 'cbr0', 'last_reserved_ip.0'), '10.244.1.7');
    writeFileSync(join(roots.cniNetworksRoot, 'cbr0', '10.244.1.7'), `${SANDBOX}\neth0`);
    mkdirSync(join(roots.cgroupRoot, podCgroup(UID, SANDBOX).slice(3).trim()), { recursive: true });
    const caller = await resolver().resolve(conn('10.244.1.7', 41005));
    expect(caller).toMatchObject({
      resolved: 'partial',
      netns: 'other',
      pod: {
        namespace: 'team-a',
        name: 'web-5d9c7b8f6d-x7k2p',
        uid: UID,
        hostNetwork: false,
        source: 'address',
      },
    });
    expect(caller.pid).toBeUndefined();
    expect(caller.error).toMatch(/named by its address/);
  });

  it("from its address in the VPC CNI's checkpoint, the UID from the kubelet logs", async () => {
    mkdirSync(join(dir, 'var/run/aws-node'), { recursive: true });
    writeFileSync(
      roots.vpcCniIpamFile,
      JSON.stringify({
        version: 'vpc-cni-ipam/1',
        allocations: [
          {
            containerID: 'f'.repeat(64),
            ipv4: '10.0.5.9',
            metadata: { k8sPodNamespace: 'team-a', k8sPodName: 'web-5d9c7b8f6d-x7k2p' },
          },
        ],
      }),
    );
    const caller = await resolver().resolve(conn('10.0.5.9', 41006));
    expect(caller.pod).toEqual({
      namespace: 'team-a',
      name: 'web-5d9c7b8f6d-x7k2p',
      uid: UID,
      hostNetwork: false,
      source: 'address',
    });
    // An address no record names stays unknown, and loopback is never looked up.
    expect(await resolver().resolve(conn('10.0.5.77', 41007))).toMatchObject({ resolved: 'none' });
    expect((await resolver().resolve(conn('127.0.0.1', 41008))).pod).toBeUndefined();
  });
});
