import type { ContainerRef } from './types.js';

/**
 * PURE: container identity from /proc/PID/cgroup, the cgroup v2 line "0::PATH" or the v1 lines
 * "ID:CONTROLLERS:PATH". The paths name the container (its 64-hex id) and, under Kubernetes, the pod
 * (its UID), in the forms of each driver and runtime:
 *
 *   kubelet, systemd driver   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<UID, _ for ->.slice/<scope>
 *                             (Guaranteed pods: /kubepods.slice/kubepods-pod<UID>.slice/...; kind: kubelet-kubepods-...)
 *   kubelet, cgroupfs driver  /kubepods/burstable/pod<UID>/<scope>      (Guaranteed: /kubepods/pod<UID>/<scope>)
 *   scope: containerd         cri-containerd-<ID>.scope (systemd), <ID> (cgroupfs)
 *          CRI-O              crio-<ID>.scope (systemd), crio-<ID> (cgroupfs); crio-conmon-<ID> is its monitor
 *          Docker             docker-<ID>.scope (systemd), <ID> (cgroupfs)
 *
 * and outside Kubernetes: Docker (/docker/ID, docker-ID.scope), Podman (libpod-ID), CRI-O, containerd
 * (cri-containerd-ID, nerdctl-ID, /k8s.io/ID). The kubepods part may sit anywhere in the path (a
 * kubelet under its own slice, a node inside a container, a test's parent cgroup). A guard in a
 * pod of its own cgroup namespace (a DaemonSet on cgroup v2) reads other pods' paths relative to its
 * own cgroup, e.g. "/../../kubepods-besteffort-pod<UID>.slice/..." or, with the cgroupfs driver,
 * "/../../pod<UID>/<ID>" (no kubepods left in sight): a path that climbs out of the reader's
 * namespace is taken as the kubelet's when a component is exactly pod<UID>. A cgroupfs path names
 * no runtime: the runtime is then 'kubernetes'. Returns undefined for host processes.
 */

const HEX64 = '[0-9a-f]{64}';
/** A pod UID: a UUID (dashes, or underscores in systemd unit names), or a static pod's 32-hex hash. */
const POD_UID = '[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32}';

export function parseCgroup(text: string): ContainerRef | undefined {
  const unified: string[] = [];
  const legacy: string[] = [];
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    const path = line.slice(second + 1).trim();
    if (!path || path === '/') continue;
    // The unified (v2) line "0::path" is the most precise; try it first, then every v1 hierarchy.
    (line.startsWith('0::') ? unified : legacy).push(path);
  }
  for (const p of [...unified, ...legacy]) {
    const ref = containerFromPath(p);
    if (ref) return ref;
  }
  return undefined;
}

/** kubepods...pod<UID> anywhere in the path; the UID's dashes may be underscores (systemd). */
const POD_RE = new RegExp(`kubepods.*?pod(${POD_UID})(?:\\.slice)?(?:/|$)`);
/** In a path relative to the reader's cgroup namespace ("/../"): a component pod<UID> (cgroupfs driver). */
const RELATIVE_POD_RE = new RegExp(`/pod(${POD_UID})(?:/|$)`);
/** The container scope right below the pod's cgroup: [prefix] ID [.scope]. */
const POD_SCOPE_RE = new RegExp(`^(cri-containerd-|crio-|docker-|containerd-)?(${HEX64})(?:\\.scope)?$`);
const POD_SCOPE_RUNTIME: Readonly<Record<string, ContainerRef['runtime']>> = {
  'cri-containerd-': 'containerd',
  'containerd-': 'containerd',
  'crio-': 'cri-o',
  'docker-': 'docker',
};
/** Compiled once: a lookup describes a process on every new connection. */
const CONTAINER_RULES: ReadonlyArray<readonly [RegExp, ContainerRef['runtime']]> = [
  [new RegExp(`/docker[-/](${HEX64})(?:\\.scope)?(?:/|$)`), 'docker'],
  [new RegExp(`libpod-(?!conmon-)(${HEX64})(?:\\.scope)?(?:/|$)`), 'podman'],
  [new RegExp(`crio-(?!conmon-)(${HEX64})(?:\\.scope)?(?:/|$)`), 'cri-o'],
  [new RegExp(`(?:cri-containerd|nerdctl|containerd)-(${HEX64})(?:\\.scope)?(?:/|$)`), 'containerd'],
  [new RegExp(`^/(?:k8s\\.io|default|moby)/(${HEX64})$`), 'containerd'],
  [/\/lxc(?:\.payload)?[./]([A-Za-z0-9_.-]{1,64})(?:\/|$)/, 'unknown'],
  [new RegExp(`/(${HEX64})(?:\\.scope)?(?:/|$)`), 'unknown'],
];

/**
 * The kubelet's pod cgroup in a path: the outermost one, so that cgroups a container made below its
 * own (which it may name as it likes) never stand for the pod it runs in.
 */
function podMatch(path: string): RegExpExecArray | null {
  const named = POD_RE.exec(path);
  const relative = path.startsWith('/../') ? RELATIVE_POD_RE.exec(path) : null;
  if (named && relative) return relative.index < named.index ? relative : named;
  return named ?? relative;
}

export function containerFromPath(path: string): ContainerRef | undefined {
  const pod = podMatch(path);
  if (pod) {
    const podUid = (pod[1] as string).replace(/_/g, '-');
    // The component right below the pod's cgroup is the container (a process may sit deeper,
    // in a cgroup of its own inside the container).
    const below = path.slice(pod.index + pod[0].length).split('/')[0] ?? '';
    const scope = POD_SCOPE_RE.exec(below);
    if (scope) {
      return { id: scope[2] as string, runtime: POD_SCOPE_RUNTIME[scope[1] ?? ''] ?? 'kubernetes', podUid };
    }
    // The pod's own cgroup, or a runtime's helper (crio-conmon-ID): the pod, not a container.
    return { id: `pod${podUid}`, runtime: 'kubernetes', podUid };
  }
  for (const [re, runtime] of CONTAINER_RULES) {
    const m = re.exec(path);
    if (m) return { id: m[1] as string, runtime };
  }
  return undefined;
}
