import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ALL_OK,
  addPod,
  createHost,
  destroyHost,
  doctor,
  GUARD_PORT,
  HOST_TESTS_ENABLED,
  type Host,
  json,
  MAIN,
  type Pod,
  waitForLine,
} from '../support/host-node.js';

/**
 * install --pod-interfaces on a node built out of network namespaces: pods attached the way the
 * Amazon VPC CNI attaches them (a veth "eni..." per pod, no bridge, no address on the host side).
 * Every pod's metadata traffic goes to the guard, IPv6 is refused, a pod that appears later is cut off
 * (never let through) until the interface watcher turns its route_localnet on, the loopback drop
 * keeps pods away from the node's loopback services, and uninstall puts every switch back.
 */

const V4 = 'http://169.254.169.254/latest/api/token';
const V6 = 'http://[fd00:ec2::254]/latest/api/token';

describe.skipIf(!HOST_TESTS_ENABLED).each(['iptables', 'nftables'] as const)(
  'pod interfaces, eni+ (%s)',
  (backend) => {
    let h: Host | undefined;
    const pods: Pod[] = [];
    const watchers: ChildProcess[] = [];
    afterAll(() => {
      for (const w of watchers) w.kill('SIGKILL');
      for (const p of pods) p.ns.destroy();
      destroyHost(h);
    });
    const localnet = (p: Pod) =>
      (h as Host).ns.exec('cat', [`/proc/sys/net/ipv4/conf/${p.iface}/route_localnet`]).trim();
    const pod = (label: string) => {
      const p = addPod((h as Host).ns, label, pods.length + 1);
      pods.push(p);
      return p;
    };
    const watch = (host: Host) => {
      const w = host.ns.spawn('node', [
        MAIN,
        'install',
        '--apply',
        '--watch-interfaces',
        '--pod-interfaces',
        'eni+',
        '--root',
        host.root,
        '--backend',
        backend,
      ]);
      watchers.push(w);
      return w;
    };
    const stop = async (w: ChildProcess) => {
      const gone = new Promise((r) => w.once('exit', r));
      w.kill('SIGTERM');
      await gone;
    };
    /** From a pod: host loopback, which only route_localnet plus a missing drop rule would expose. */
    const loopbackFrom = (p: Pod) =>
      p.ns.run('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--connect-timeout',
        '3',
        '--max-time',
        '5',
        `http://127.0.0.1:${GUARD_PORT + 1}/healthz`,
      ]);

    it('redirects every pod, keeps late pods cut off until watched, and uninstall restores all', async () => {
      // Token requests from pods are refused by the guard's default; here they are let through, so
      // that a 200 proves the path (per-pod rules are the guard's business, tested elsewhere).
      h = await createHost(`pod-${backend.slice(0, 4)}`, '  containerTokens: allow\n');
      const host = h;
      const a = pod('poda');
      const before = host.snapshot();
      // Before install the pod reaches IMDS directly, over IPv4 and IPv6.
      expect(await host.curlFrom(a.ns)).toEqual({ code: '200', viaGuard: false });
      expect(await host.curlFrom(a.ns, V6)).toEqual({ code: '200', viaGuard: false });

      await host.startGuard();
      const args = host.installArgs('--backend', backend, '--pod-interfaces', 'eni+', '--ipv6');
      const r = await host.cli(args);
      expect(r.status, r.stderr).toBe(0);
      expect(localnet(a)).toBe('1');
      expect(await host.curlFrom(a.ns)).toEqual({ code: '200', viaGuard: true });
      // IPv6 cannot reach the guard on ::1: refused with a reset (curl exit 7), never let through.
      expect(await host.curlFrom(a.ns, V6)).toEqual({ code: 'curl exit 7', viaGuard: false });
      // The node's own processes still go through the guard, and the guard's user around it.
      expect(await host.curl('root', V4)).toEqual({ code: '200', viaGuard: true });
      expect(await host.curl('nobody', V4)).toEqual({ code: '200', viaGuard: false });
      expect((await doctor(host)).checks).toEqual(ALL_OK);

      // Idempotent: a second install changes nothing.
      const installed = host.snapshot();
      const again = await host.cli(args);
      expect(json(again.stdout)['changes']).toEqual([]);
      expect(host.snapshot()).toBe(installed);

      // A pod that appears after install has route_localnet 0: its metadata traffic is DNATed and
      // dropped (it times out), never let through to IMDS; doctor names the interface.
      const b = pod('podb');
      expect(localnet(b)).toBe('0');
      expect(await host.curlFrom(b.ns)).toEqual({ code: 'curl exit 28', viaGuard: false });
      const late = await doctor(host);
      expect(late.checks['containers']).toBe('fail');
      expect(late.raw).toContain(`${b.iface} (eni+): route_localnet is 0`);

      // The watcher turns it on, and then on for the next pod as it appears.
      const w = watch(host);
      await waitForLine(w, new RegExp(`${b.iface}/route_localnet = 1`));
      expect(await host.curlFrom(b.ns)).toEqual({ code: '200', viaGuard: true });
      const c = pod('podc');
      await waitForLine(w, new RegExp(`${c.iface}/route_localnet = 1`));
      expect(await host.curlFrom(c.ns)).toEqual({ code: '200', viaGuard: true });
      expect((await doctor(host)).checks).toEqual(ALL_OK);

      // The Kubernetes readiness probe: only the checks it names, and no IMDSv1 question to IMDS.
      const asked = host.imdsRequests().length;
      const probe = await doctor(host, [
        '--checks',
        'redirect-v4,containers,guard-health,guard-exempt,imds-via-guard',
        '--user',
        'nobody',
      ]);
      expect(probe.checks).toEqual({
        'redirect-v4': 'ok',
        containers: 'ok',
        'guard-health': 'ok',
        'guard-exempt': 'ok',
        'imds-via-guard': 'ok',
      });
      expect(probe.status).toBe(0);
      const during = host.imdsRequests().slice(asked);
      expect(during.length).toBeGreaterThan(0); // the token PUT and GET through the guard
      expect(during.filter((q) => !q.tokenPut && !q.withToken)).toEqual([]);

      // route_localnet alone would open the node's loopback to the pods (CVE-2020-8558). A pod that
      // routes 127.0.0.1 to the node (its own loopback address removed) is dropped...
      c.ns.exec('sysctl', ['-qw', 'net.ipv4.conf.eth0.route_localnet=1']);
      c.ns.exec('ip', ['addr', 'del', '127.0.0.1/8', 'dev', 'lo']);
      c.ns.exec('ip', ['route', 'replace', '127.0.0.1/32', 'via', '169.254.1.1', 'dev', 'eth0']);
      expect(loopbackFrom(c).status).toBe(28);
      // ...and reaches the guard's admin port once the drop rule is flushed, which doctor reports.
      if (backend === 'nftables') host.ns.exec('nft', ['flush', 'chain', 'inet', 'imdsguard', 'input']);
      else host.ns.exec('iptables', ['-t', 'filter', '-F', 'IMDSGUARD-IN']);
      expect(loopbackFrom(c).stdout).toBe('200');
      const open = await doctor(host);
      expect(open.checks['containers']).toBe('fail');
      expect(open.raw).toContain('eni+: nothing drops its other traffic to 127.0.0.0/8');
      expect((await host.cli(args)).status).toBe(0);
      expect(loopbackFrom(c).status).toBe(28);

      // Uninstall (the watcher stopped first, as the systemd uninstall does) puts every switch back.
      await stop(w);
      const u = await host.cli(['uninstall', '--apply', '--json', '--root', host.root]);
      expect(u.status, u.stderr).toBe(0);
      expect([localnet(a), localnet(b), localnet(c)]).toEqual(['0', '0', '0']);
      expect(host.snapshot()).toBe(before);
      expect(readdirSync(host.root)).toEqual([]);
      expect(await host.curlFrom(a.ns)).toEqual({ code: '200', viaGuard: false });

      // A watcher left running after uninstall turns nothing on: the drop rule is gone.
      const stray = watch(host);
      await waitForLine(stray, /route_localnet left alone/);
      const d = pod('podd');
      await waitForLine(stray, /route_localnet left alone/);
      expect(localnet(d)).toBe('0');
      await stop(stray);
      expect(readdirSync(host.root)).toEqual([]);
    }, 300_000);
  },
);
