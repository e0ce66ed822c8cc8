import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProcResolver } from '../../src/guard/attribution/index.js';
import { type Caller, connectionInfo } from '../../src/guard/attribution/types.js';
import { testTimeLeft } from '../support/wait.js';

/**
 * Pod identity for real processes: a client moved into cgroups named as the kubelet names them
 * (below a parent cgroup this test creates, as the Kubernetes netns e2e does), a fake /var/log/pods
 * tree, and the resolver on the machine's real /proc. Needs root and a writable cgroup hierarchy
 * (v2 and, for the v1 case, a v1 hierarchy); skipped otherwise.
 */

const TEST_TIMEOUT_MS = 30_000;
const PY = '/usr/bin/python3';

interface Mounts {
  v2?: string;
  v1?: { path: string; hierarchy: string };
}

/** The cgroup mounts of this machine that a root test may create cgroups in. */
function cgroupMounts(): Mounts {
  if (process.getuid?.() !== 0) return {};
  const out: Mounts = {};
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const mountPoint = pre.split(' ')[4] ?? '';
    const [fsType, , options = ''] = post.split(' ');
    const writable = (() => {
      try {
        accessSync(mountPoint, constants.W_OK);
        return !/(^|,)ro(,|$)/.test(pre.split(' ')[5] ?? '');
      } catch {
        return false;
      }
    })();
    if (!writable) continue;
    if (fsType === 'cgroup2') out.v2 ??= mountPoint;
    if (fsType === 'cgroup' && options.split(',').includes('pids'))
      out.v1 ??= { path: mountPoint, hierarchy: 'pids' };
  }
  return out;
}

const mounts = cgroupMounts();
const UID = '6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b';
const APP = '1'.repeat(8) + 'abcdef0123456789'.repeat(3) + '0'.repeat(8);
const PARENT = `imdsg-pods-${process.pid}`;

let dir: string;
let server: Server;
let port: number;
const waiting: Array<(s: Socket) => void> = [];
const children: ChildProcess[] = [];
/** cgroup directories made, deepest last. */
const made: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imdsg-podnode-'));
  // The kubelet's view of the pod: its log directory and the container's link.
  const podDir = join(dir, 'pods', `team-a_web-7c9d8b_${UID}`, 'app');
  mkdirSync(podDir, { recursive: true });
  writeFileSync(join(podDir, '0.log'), '');
  mkdirSync(join(dir, 'containers'));
  symlinkSync(join(podDir, '0.log'), join(dir, 'containers', `web-7c9d8b_team-a_app-${APP}.log`));
  server = createServer((s) => {
    s.on('error', () => {});
    waiting.shift()?.(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as { port: number }).port;
});

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await once(c, 'exit');
    }
  }
  // Deepest first: a cgroup can be removed once it holds no process and no child cgroup.
  for (const d of made.splice(0).reverse()) rmdirSync(d);
});

afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** mkdir -p below a cgroup mount, remembering each new directory for the clean-up. */
function cgroup(mount: string, path: string): string {
  let at = mount;
  for (const part of path.split('/').filter(Boolean)) {
    at = join(at, part);
    try {
      mkdirSync(at);
      made.push(at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return at;
}

/**
 * A python client, moved into `cgroupDir` before it connects (it waits for a line on stdin), and
 * the guard side of its connection.
 */
async function clientIn(cgroupDir: string): Promise<{ child: ChildProcess; socket: Socket }> {
  const child = spawn(
    PY,
    [
      '-c',
      `import socket,sys,time\nsys.stdin.readline()\ns=socket.create_connection(('127.0.0.1',${port}))\ns.sendall(b'x')\ntime.sleep(300)`,
    ],
    { stdio: ['pipe', 'ignore', 'ignore'] },
  );
  children.push(child);
  if (child.pid === undefined) throw new Error('python did not start');
  writeFileSync(join(cgroupDir, 'cgroup.procs'), String(child.pid));
  const accepted = new Promise<Socket>((res, rej) => {
    const t = setTimeout(
      () => rej(new Error('no connection before the test timeout')),
      testTimeLeft() ?? 60_000,
    );
    waiting.push((s) => {
      clearTimeout(t);
      res(s);
    });
  });
  child.stdin?.write('\n');
  return { child, socket: await accepted };
}

/** The caller of the guard side of a connection, by a fresh resolver over the real /proc. */
async function resolve(socket: Socket): Promise<Caller> {
  const r = createProcResolver({
    podsRoot: join(dir, 'pods'),
    containerLogsRoot: join(dir, 'containers'),
    budgetMs: 10_000,
    refreshIntervalMs: 0,
  });
  try {
    return await r.resolve(connectionInfo(socket));
  } finally {
    await r.close();
  }
}

const wantPod = {
  namespace: 'team-a',
  name: 'web-7c9d8b',
  uid: UID,
  container: 'app',
  hostNetwork: true,
  source: 'cgroup',
};

describe('pod identity of real processes in kubelet-named cgroups', () => {
  it.skipIf(mounts.v2 === undefined || !PY)(
    'cgroup v2, systemd driver, containerd: below a parent cgroup',
    async () => {
      const v2 = mounts.v2 as string;
      const path = `${PARENT}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${APP}.scope`;
      const { child, socket } = await clientIn(cgroup(v2, path));
      expect(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8')).toContain(`0::/${path}`);
      expect(await resolve(socket)).toMatchObject({
        resolved: 'full',
        pid: child.pid,
        netns: 'host',
        container: { id: APP, runtime: 'containerd', podUid: UID },
        pod: wantPod,
      });
    },
    TEST_TIMEOUT_MS,
  );

  it.skipIf(mounts.v1 === undefined || !PY)(
    'cgroup v1, cgroupfs driver: the pod and container from a v1 hierarchy',
    async () => {
      const v1 = mounts.v1 as { path: string; hierarchy: string };
      const path = `${PARENT}/kubepods/besteffort/pod${UID}/${APP}`;
      const { child, socket } = await clientIn(cgroup(v1.path, path));
      expect(readFileSync(`/proc/${child.pid}/cgroup`, 'utf8')).toContain(`:${v1.hierarchy}:/${path}`);
      expect(await resolve(socket)).toMatchObject({
        resolved: 'full',
        pid: child.pid,
        container: { id: APP, runtime: 'kubernetes', podUid: UID },
        pod: wantPod,
      });
    },
    TEST_TIMEOUT_MS,
  );

  it.skipIf(mounts.v2 === undefined || !PY)(
    'a process of the node (not in a kubepods cgroup) is not a pod',
    async () => {
      const { child, socket } = await clientIn(
        cgroup(mounts.v2 as string, `${PARENT}/system.slice/app.service`),
      );
      const caller = await resolve(socket);
      expect(caller).toMatchObject({ resolved: 'full', pid: child.pid });
      expect(caller.pod).toBeUndefined();
      expect(caller.container).toBeUndefined();
    },
    TEST_TIMEOUT_MS,
  );
});
