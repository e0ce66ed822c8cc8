import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  mkdirSync,
  readFileSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Netns } from './netns.js';

/**
 * The Kubernetes side of a node built out of network namespaces (test/e2e/k8s-node.test.ts): an IMDS
 * that answers token PUTs with IP TTL 1, as an instance with HttpPutResponseHopLimit=1 does; pods'
 * processes in cgroups named as the kubelet names them, below a parent cgroup the test creates; the
 * kubelet's /var/log/pods and /var/log/containers entries in a scratch directory. Nothing here
 * touches the machine's own firewall; every cgroup made is removed by removeCgroups().
 */

/**
 * Hop limit 1 for real, inside the IMDS namespace: a connection that carries a token PUT is marked,
 * and every packet IMDS sends on it leaves with TTL 1. The node's own requests arrive (one hop); a
 * pod's, forwarded by the node, lose the answer there (TTL exceeded), so the pod's PUT never gets one.
 */
export function enforceHopLimitOne(imds: Netns): void {
  imds.exec('iptables', [
    '-t',
    'mangle',
    '-A',
    'PREROUTING',
    '-p',
    'tcp',
    '--dport',
    '80',
    '-m',
    'string',
    '--string',
    'PUT /latest/api/token',
    '--algo',
    'bm',
    '-j',
    'CONNMARK',
    '--set-mark',
    '1',
  ]);
  imds.exec('iptables', [
    '-t',
    'mangle',
    '-A',
    'OUTPUT',
    '-p',
    'tcp',
    '--sport',
    '80',
    '-m',
    'connmark',
    '--mark',
    '1',
    '-j',
    'TTL',
    '--ttl-set',
    '1',
  ]);
}

/** The writable cgroup v2 mount of this machine (as root), if any. */
export function cgroupV2Mount(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post || post.split(' ')[0] !== 'cgroup2') continue;
    const fields = pre.split(' ');
    const mountPoint = fields[4] ?? '';
    if (/(^|,)ro(,|$)/.test(fields[5] ?? '')) continue;
    try {
      accessSync(mountPoint, constants.W_OK);
      return mountPoint;
    } catch {
      // not writable here
    }
  }
  return undefined;
}

/** A pod as the kubelet describes it on disk, and one container of it. */
export interface PodSpec {
  namespace: string;
  name: string;
  /** The pod's UID, with dashes. */
  uid: string;
  container: string;
  /** The container's id: 64 hex digits. */
  containerId: string;
  /** The container's cgroup path below the kubepods root, as the kubelet and runtime name it. */
  cgroup: string;
}

export function podSpec(
  namespace: string,
  name: string,
  container: string,
  form: 'containerd' | 'cri-o',
): PodSpec {
  const hex = randomBytes(16).toString('hex');
  const uid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  const containerId = randomBytes(32).toString('hex');
  const slice = `kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice`;
  const scope = form === 'containerd' ? `cri-containerd-${containerId}.scope` : `crio-${containerId}.scope`;
  return {
    namespace,
    name,
    uid,
    container,
    containerId,
    cgroup: `kubepods.slice/kubepods-besteffort.slice/${slice}/${scope}`,
  };
}

/** The kubelet's entries for the pod: PODS/NS_NAME_UID/CONTAINER/0.log and its /var/log/containers link. */
export function writeKubeletLogs(pod: PodSpec, podsRoot: string, containerLogsRoot: string): void {
  const dir = join(podsRoot, `${pod.namespace}_${pod.name}_${pod.uid}`, pod.container);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '0.log'), '');
  mkdirSync(containerLogsRoot, { recursive: true });
  symlinkSync(
    join(dir, '0.log'),
    join(containerLogsRoot, `${pod.name}_${pod.namespace}_${pod.container}-${pod.containerId}.log`),
  );
}

/** Cgroups below one parent cgroup of the test, removed deepest first. */
export class TestCgroups {
  private readonly made: string[] = [];
  private readonly mount: string;
  readonly parent: string;

  constructor(mount: string, label: string) {
    this.mount = mount;
    this.parent = `imdsg-${label}-${randomBytes(3).toString('hex')}`;
  }

  /** mkdir -p of parent/path; returns the cgroup's cgroup.procs file. */
  make(path: string): string {
    let at = this.mount;
    for (const part of `${this.parent}/${path}`.split('/').filter(Boolean)) {
      at = join(at, part);
      try {
        mkdirSync(at);
        this.made.push(at);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    return join(at, 'cgroup.procs');
  }

  /** Kills whatever is left in the cgroups, then removes them (deepest first). */
  remove(): void {
    for (const d of [...this.made].reverse()) {
      try {
        for (const pid of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone
          }
        }
      } catch {
        // already removed
      }
    }
    for (const d of this.made.splice(0).reverse()) {
      for (let i = 0; i < 50; i++) {
        try {
          rmdirSync(d);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY') throw e;
          // a killed process leaves its cgroup when it has exited: wait for that
          spawnSync('sleep', ['0.1']);
        }
      }
    }
  }
}

/**
 * Runs argv to completion inside a cgroup and a network namespace of the test: the shell puts itself
 * in the cgroup (before `ip netns exec`, which mounts its own /sys), then execs, so every process of
 * the command starts in that cgroup.
 */
export function runInCgroup(
  procsFile: string,
  netns: Netns,
  argv: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string },
): { status: number | null; stdout: string; stderr: string } {
  const cmd = ['ip', 'netns', 'exec', netns.name, ...argv];
  const r = spawnSync('sh', ['-c', 'echo $$ > "$0" && exec "$@"', procsFile, ...cmd], {
    encoding: 'utf8',
    env: opts.env ?? process.env,
    timeout: opts.timeoutMs,
    killSignal: 'SIGKILL',
    cwd: opts.cwd,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * A pod's sandbox ("pause") process: long-lived, in the pod's network namespace and in the pod's own
 * sandbox cgroup, as on a real node, where every pod's network namespace holds one for its whole life.
 */
export function startSandbox(pod: PodSpec, cgroups: TestCgroups, netns: Netns): ChildProcess {
  const sandbox = randomBytes(32).toString('hex');
  const procsFile = cgroups.make(pod.cgroup.replace(/[^/]+$/, `cri-containerd-${sandbox}.scope`));
  return spawn(
    'sh',
    ['-c', 'echo $$ > "$0" && exec "$@"', procsFile, 'ip', 'netns', 'exec', netns.name, 'sleep', 'infinity'],
    { stdio: 'ignore' },
  );
}
