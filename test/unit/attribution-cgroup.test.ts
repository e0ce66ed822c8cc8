import { describe, expect, it } from 'vitest';
import { parseCgroup } from '../../src/guard/attribution/cgroup-identity.js';

/**
 * Container and pod identity from /proc/PID/cgroup, against the path forms real nodes write: cgroup
 * v1 (one line per hierarchy) and v2 (the "0::" line), the kubelet's systemd and cgroupfs drivers,
 * and the scopes of containerd, CRI-O and Docker (cri-dockerd). Samples follow what these produce
 * (ids and UIDs replaced).
 */

const id = 'a'.repeat(40) + '0123456789abcdef01234567';
const sandbox = 'b'.repeat(64);
const uid = '3b5e6c1d-8f2a-4c7e-9d1b-2a3c4d5e6f70';
const uid_ = uid.replace(/-/g, '_');

describe('pods: the kubelet drivers and the runtimes', () => {
  const cases: Array<[string, string, ReturnType<typeof parseCgroup>]> = [
    // cgroup v2, systemd driver (EKS AL2023, Bottlerocket, GKE COS, most current distributions)
    [
      'v2 systemd containerd, Burstable',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid_}.slice/cri-containerd-${id}.scope\n`,
      { id, runtime: 'containerd', podUid: uid },
    ],
    [
      'v2 systemd containerd, Guaranteed (no QoS slice)',
      `0::/kubepods.slice/kubepods-pod${uid_}.slice/cri-containerd-${id}.scope\n`,
      { id, runtime: 'containerd', podUid: uid },
    ],
    [
      'v2 systemd CRI-O (OpenShift)',
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid_}.slice/crio-${id}.scope\n`,
      { id, runtime: 'cri-o', podUid: uid },
    ],
    [
      'v2 systemd Docker (cri-dockerd)',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid_}.slice/docker-${id}.scope\n`,
      { id, runtime: 'docker', podUid: uid },
    ],
    [
      'v2 systemd, kind (kubelet under its own slice)',
      `0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${uid_}.slice/cri-containerd-${id}.scope\n`,
      { id, runtime: 'containerd', podUid: uid },
    ],
    [
      'v2 systemd, a process in a sub-cgroup of its container (systemd inside)',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid_}.slice/cri-containerd-${id}.scope/init.scope\n`,
      { id, runtime: 'containerd', podUid: uid },
    ],
    // cgroup v2, cgroupfs driver (k3s, kubeadm clusters configured for cgroupfs)
    [
      'v2 cgroupfs containerd',
      `0::/kubepods/besteffort/pod${uid}/${id}\n`,
      { id, runtime: 'kubernetes', podUid: uid },
    ],
    [
      'v2 cgroupfs CRI-O',
      `0::/kubepods/burstable/pod${uid}/crio-${id}\n`,
      { id, runtime: 'cri-o', podUid: uid },
    ],
    ['v2 cgroupfs, Guaranteed', `0::/kubepods/pod${uid}/${id}\n`, { id, runtime: 'kubernetes', podUid: uid }],
    // cgroup v1 (EKS AL2, older distributions): one line per hierarchy, the systemd one too
    [
      'v1 cgroupfs Docker (dockershim era)',
      [
        `12:pids:/kubepods/burstable/pod${uid}/${id}`,
        `11:memory:/kubepods/burstable/pod${uid}/${id}`,
        `3:cpu,cpuacct:/kubepods/burstable/pod${uid}/${id}`,
        `1:name=systemd:/kubepods/burstable/pod${uid}/${id}`,
        '',
      ].join('\n'),
      { id, runtime: 'kubernetes', podUid: uid },
    ],
    [
      'v1 systemd containerd',
      [
        `12:memory:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid_}.slice/cri-containerd-${id}.scope`,
        `11:devices:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid_}.slice/cri-containerd-${id}.scope`,
        `1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid_}.slice/cri-containerd-${id}.scope`,
        '0::/',
        '',
      ].join('\n'),
      { id, runtime: 'containerd', podUid: uid },
    ],
    [
      'v1 systemd Docker',
      `10:cpuset:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid_}.slice/docker-${id}.scope\n`,
      { id, runtime: 'docker', podUid: uid },
    ],
    // a node whose cgroups sit below another cgroup (a kubelet in a container, a test's own parent)
    [
      'nested below a parent cgroup',
      `0::/imdsg-e2e-1234/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid_}.slice/cri-containerd-${id}.scope\n`,
      { id, runtime: 'containerd', podUid: uid },
    ],
    [
      'hybrid v1/v2: the unified line names the container',
      `4:memory:/\n0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid_}.slice/crio-${id}.scope\n`,
      { id, runtime: 'cri-o', podUid: uid },
    ],
  ];
  for (const [name, text, want] of cases) {
    it(name, () => {
      expect(parseCgroup(text)).toEqual(want);
    });
  }

  it("as a guard in its own cgroup namespace reads them (a DaemonSet pod): relative to the guard's cgroup", () => {
    // systemd driver: the pod slice still names kubepods
    expect(
      parseCgroup(`0::/../../kubepods-besteffort-pod${uid_}.slice/cri-containerd-${id}.scope\n`),
    ).toEqual({ id, runtime: 'containerd', podUid: uid });
    // cgroupfs driver, guard and caller in the same QoS class: no kubepods left in the path
    expect(parseCgroup(`0::/../../pod${uid}/${id}\n`)).toEqual({ id, runtime: 'kubernetes', podUid: uid });
    expect(parseCgroup(`0::/../../pod${uid}/crio-${id}\n`)).toEqual({ id, runtime: 'cri-o', podUid: uid });
    // an absolute path needs the kubepods part: pod<UID> alone is not the kubelet's
    expect(parseCgroup(`0::/pod${uid}/${id}\n`)).toEqual({ id, runtime: 'unknown' });
  });

  it('cgroups a container made below its own never name another pod: the outermost pod wins', () => {
    const other = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
    expect(
      parseCgroup(`0::/kubepods/besteffort/pod${uid}/${id}/kubepods/besteffort/pod${other}/${sandbox}\n`),
    ).toEqual({ id, runtime: 'kubernetes', podUid: uid });
    expect(parseCgroup(`0::/../../pod${uid}/${id}/kubepods/pod${other}/${sandbox}\n`)).toEqual({
      id,
      runtime: 'kubernetes',
      podUid: uid,
    });
  });

  it("the pod's own cgroup, and CRI-O's conmon, name the pod but no container", () => {
    const podOnly = { id: `pod${uid}`, runtime: 'kubernetes', podUid: uid };
    expect(parseCgroup(`0::/kubepods/pod${uid}\n`)).toEqual(podOnly);
    expect(
      parseCgroup(`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid_}.slice\n`),
    ).toEqual(podOnly);
    expect(
      parseCgroup(
        `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid_}.slice/crio-conmon-${id}.scope\n`,
      ),
    ).toEqual(podOnly);
  });

  it('the sandbox (pause) container is a container of the pod like any other', () => {
    expect(
      parseCgroup(
        `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid_}.slice/cri-containerd-${sandbox}.scope\n`,
      ),
    ).toEqual({ id: sandbox, runtime: 'containerd', podUid: uid });
  });

  it('a path that only looks like a pod is not one', () => {
    // no kubepods ancestor, a UID of the wrong shape, a pod word inside another name
    expect(parseCgroup(`0::/system.slice/pod${uid}.service\n`)).toBeUndefined();
    expect(parseCgroup(`0::/kubepods/burstable/pod${uid.slice(0, 30)}/${id.slice(0, 20)}\n`)).toBeUndefined();
    expect(parseCgroup('0::/kubepods.slice/kubepods-burstable.slice\n')).toBeUndefined();
  });
});

describe('containers outside Kubernetes', () => {
  const id = 'a'.repeat(40) + '0123456789abcdef01234567';

  it('returns undefined for host processes (v1 and v2)', () => {
    expect(parseCgroup('0::/\n')).toBeUndefined();
    expect(parseCgroup('0::/user.slice/user-1000.slice/session-3.scope\n')).toBeUndefined();
    expect(
      parseCgroup('12:memory:/system.slice/sshd.service\n0::/system.slice/sshd.service\n'),
    ).toBeUndefined();
    // A 32-hex id (not a container runtime's 64-hex id) is not a container.
    expect(parseCgroup('4:memory:/process_api/ca05f074fd0ecfc4e5d80b6fc810d8c1\n0::/\n')).toBeUndefined();
  });

  it('docker: cgroupfs v1 and systemd v2', () => {
    expect(parseCgroup(`12:pids:/docker/${id}\n11:memory:/docker/${id}\n0::/\n`)).toEqual({
      id,
      runtime: 'docker',
    });
    expect(parseCgroup(`0::/system.slice/docker-${id}.scope\n`)).toEqual({ id, runtime: 'docker' });
  });

  it('podman, cri-o, containerd; conmon is not the container', () => {
    expect(parseCgroup(`0::/machine.slice/libpod-${id}.scope\n`)).toEqual({ id, runtime: 'podman' });
    expect(
      parseCgroup(
        `0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${id}.scope/container\n`,
      ),
    ).toEqual({ id, runtime: 'podman' });
    expect(parseCgroup(`1:name=systemd:/libpod_parent/libpod-${id}\n`)).toEqual({ id, runtime: 'podman' });
    expect(parseCgroup(`0::/machine.slice/libpod-conmon-${id}.scope\n`)?.runtime).not.toBe('podman');
    expect(parseCgroup(`0::/system.slice/crio-${id}.scope\n`)).toEqual({ id, runtime: 'cri-o' });
    expect(parseCgroup(`0::/system.slice/cri-containerd-${id}.scope\n`)).toEqual({
      id,
      runtime: 'containerd',
    });
    expect(parseCgroup(`0::/k8s.io/${id}\n`)).toEqual({ id, runtime: 'containerd' });
    expect(parseCgroup(`0::/system.slice/nerdctl-${id}.scope\n`)).toEqual({ id, runtime: 'containerd' });
  });

  it('prefers the unified v2 line and ignores malformed lines', () => {
    const other = 'b'.repeat(64);
    expect(
      parseCgroup(`5:cpu:/docker/${other}\nnot a cgroup line\n0::/system.slice/docker-${id}.scope\n`),
    ).toEqual({
      id,
      runtime: 'docker',
    });
  });
});
