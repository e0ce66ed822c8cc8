import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GuardEvent } from '../../src/guard/events/types.js';
import { canUseNetns, createNetns, type Netns } from './netns.js';
import { waitFor as waitForEvent } from './wait.js';

/**
 * The real deployment, inside a network namespace the suite creates: 169.254.169.254 on lo, the
 * emulator there on port 80 (IMDSv2 required), the guard running as `nobody`, and the owner-exempt
 * iptables REDIRECT that sends everyone else's metadata traffic to it. Real clients (botocore, the
 * AWS SDK v3, curl) run as another uid and talk to 169.254.169.254 as they would on EC2.
 *
 * One suite, run by test/e2e/guard-netns.test.ts with `node dist/cli/main.js` and by
 * test/e2e/release.test.ts with the release executable and no Node on PATH.
 */

const ROOT = process.cwd();
/** Runs the SDK v3 client (a client program, not imdsguard). */
const NODE = process.execPath;

/** How the suite runs imdsguard (the emulator and the guard). */
export interface GuardBinary {
  /** The argv prefix: [node, dist/cli/main.js], or [the release executable]. */
  argv: readonly string[];
  /** PATH of the emulator and the guard. */
  path: string;
}

/** The real CLI as npm installs it. */
export const NODE_CLI: GuardBinary = {
  argv: [process.execPath, join(ROOT, 'dist', 'cli', 'main.js')],
  path: '/usr/bin:/bin',
};
const GUARD_PORT = 16925;
const CLIENT_UID = '1234';
const PY = '/usr/bin/python3';
const enabled = canUseNetns();

const AS_CLIENT = ['--reuid', CLIENT_UID, '--regid', CLIENT_UID, '--clear-groups'];
/** A client's environment: no AWS configuration or credentials files, so only IMDS can answer. */
export const CLIENT_ENV = {
  PATH: '/usr/bin:/bin',
  HOME: '/tmp',
  AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
};
const BOTOCORE = `
import json
from botocore.utils import InstanceMetadataFetcher
c = InstanceMetadataFetcher(timeout=3, num_attempts=1).retrieve_iam_role_credentials()
print(json.dumps({"ok": bool(c.get("access_key")) and bool(c.get("secret_key")), "role": c.get("role_name")}))
`;

/** Registers the suite; `binary` is read when it starts (after the caller's own beforeAll). */
export function guardInNetnsSuite(title: string, binary: () => GuardBinary): void {
  // Each test runs real clients in the namespace (each bounded to a few seconds) and waits up to 5 s
  // for the guard's events or a reload.
  vi.setConfig({ testTimeout: 45_000 });
  describe.skipIf(!enabled)(`${title} (iptables REDIRECT, guard as nobody)`, () => {
    let ns: Netns;
    let bin: GuardBinary;
    let dir: string;
    let configFile: string;
    let eventsFile: string;
    let guard: ChildProcess;
    let guardStderr = '';

    const events = (): GuardEvent[] => {
      try {
        return readFileSync(eventsFile, 'utf8')
          .split('\n')
          .filter((l) => l.length > 0)
          .map((l) => JSON.parse(l) as GuardEvent);
      } catch {
        return [];
      }
    };
    /** Events recorded after `from`, once there are at least `atLeast`. */
    const newEvents = async (from: number, atLeast: number): Promise<GuardEvent[]> => {
      await waitFor(() => events().length - from >= atLeast, `${atLeast} new event(s)`);
      return events().slice(from);
    };
    const emulatorRequests = (): Array<{
      path: string;
      tokenPut: boolean;
      withToken: boolean;
      forwarded?: boolean;
    }> =>
      (JSON.parse(ns.exec('curl', ['-s', 'http://127.0.0.1:1339/requests'])) as { requests: [] }).requests;
    const curlAs = (uid: string, args: string[], gid = uid) =>
      ns.run(
        'setpriv',
        ['--reuid', uid, '--regid', gid, '--clear-groups', 'curl', '-s', '-m', '20', ...args],
        {
          env: CLIENT_ENV,
        },
      );
    const waitFor = async (what: () => boolean, label: string, pollMs?: number) => {
      try {
        await waitForEvent(what, label, pollMs);
      } catch (err) {
        throw new Error(`${(err as Error).message}; guard stderr:\n${guardStderr}`);
      }
    };
    const writeConfig = (guardSection: string) => {
      writeFileSync(configFile, `guard:\n  listen: ["127.0.0.1:${GUARD_PORT}"]\n${guardSection}`);
      chmodSync(configFile, 0o644);
    };
    const reload = async (guardSection: string) => {
      const n = guardStderr.split('configuration reloaded').length;
      writeConfig(guardSection);
      process.kill(guard.pid as number, 'SIGHUP');
      await waitFor(() => guardStderr.split('configuration reloaded').length > n, 'the reload');
    };

    beforeAll(async () => {
      bin = binary();
      ns = createNetns('guard');
      try {
        ns.exec('ip', ['addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
        const [cmd, ...pre] = bin.argv as [string, ...string[]];
        const emu = ns.spawn(
          cmd,
          [
            ...pre,
            'emulate',
            '--listen',
            '169.254.169.254:80',
            '--tokens',
            'required',
            '--admin',
            '127.0.0.1:1339',
          ],
          { env: { PATH: bin.path } },
        );
        emu.stderr?.resume();
        emu.stdout?.resume();
        await waitFor(
          () => ns.run('curl', ['-s', '-o', '/dev/null', 'http://127.0.0.1:1339/settings']).status === 0,
          'the emulator to listen',
          100,
        );
        dir = mkdtempSync(join(tmpdir(), 'imdsg-netns-'));
        chmodSync(dir, 0o777);
        configFile = join(dir, 'guard.yaml');
        eventsFile = join(dir, 'events.jsonl');
        writeConfig('  mode: enforce\n');
        const uid = ns.exec('id', ['-u', 'nobody']).trim();
        ns.exec('iptables', [
          '-t',
          'nat',
          '-A',
          'OUTPUT',
          '-d',
          '169.254.169.254',
          '-p',
          'tcp',
          '--dport',
          '80',
          '-m',
          'owner',
          '!',
          '--uid-owner',
          uid,
          '-j',
          'REDIRECT',
          '--to-ports',
          String(GUARD_PORT),
        ]);
        guard = ns.spawn(
          'setpriv',
          [
            '--reuid=nobody',
            '--regid=nogroup',
            '--clear-groups',
            ...bin.argv,
            'guard',
            '--config',
            configFile,
            '--events',
            eventsFile,
          ],
          { env: { PATH: bin.path } },
        );
        guard.stdout?.resume();
        guard.stderr?.setEncoding('utf8');
        guard.stderr?.on('data', (c: string) => {
          guardStderr += c;
        });
        await waitFor(() => guardStderr.includes('listening on'), 'the guard to listen');
      } catch (err) {
        ns.destroy();
        throw err;
      }
      // The emulator and the guard may each take up to 15 s to listen on a loaded machine.
    }, 60_000);

    afterAll(() => {
      ns?.destroy();
    });

    it('botocore, run as another user, gets credentials over IMDSv2 through the guard', () => {
      const from = events().length;
      const r = ns.run('setpriv', [...AS_CLIENT, PY, '-c', BOTOCORE], { env: CLIENT_ENV });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true });
      return newEvents(from, 3).then((got) => {
        expect(got.map((e) => [e.request.version, e.decision, e.action])).toEqual(
          expect.arrayContaining([
            ['token', 'allow', 'forwarded'],
            ['v2', 'allow', 'forwarded'],
          ]),
        );
        expect(got.every((e) => e.decision === 'allow' && e.action === 'forwarded' && e.status === 200)).toBe(
          true,
        );
        expect(got.every((e) => e.request.hostHeader === '169.254.169.254')).toBe(true);
      });
    });

    it('the AWS SDK for JavaScript v3, run as another user, gets credentials over IMDSv2', async () => {
      const from = events().length;
      const r = ns.run('setpriv', [...AS_CLIENT, NODE, join(ROOT, 'dist', 'demo', 'clients', 'sdk-v3.js')], {
        env: CLIENT_ENV,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, sessionToken: true });
      const got = await newEvents(from, 3);
      expect(got[0]).toMatchObject({
        request: { version: 'token', method: 'PUT' },
        rule: 'imdsv2-token',
        status: 200,
      });
      expect(got.slice(1).every((e) => e.rule === 'imdsv2' && e.status === 200)).toBe(true);
    });

    it('curl (tokenless) from another user is refused, and never reaches the metadata service', async () => {
      const from = events().length;
      const before = emulatorRequests().length;
      const r = curlAs(CLIENT_UID, [
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        'http://169.254.169.254/latest/meta-data/instance-id',
      ]);
      expect(r.stdout).toBe('401');
      const [e] = await newEvents(from, 1);
      expect(e).toMatchObject({ decision: 'deny', action: 'refused', rule: 'default-deny-v1', status: 401 });
      expect(e?.request.userAgent).toMatch(/^curl\//);
      expect(emulatorRequests().length).toBe(before);
    });

    it('X-Forwarded-For is refused (token PUT through a proxy)', async () => {
      const from = events().length;
      const r = curlAs(CLIENT_UID, [
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        'PUT',
        '-H',
        'X-aws-ec2-metadata-token-ttl-seconds: 21600',
        '-H',
        'X-Forwarded-For: 203.0.113.5',
        'http://169.254.169.254/latest/api/token',
      ]);
      expect(r.stdout).toBe('403');
      expect((await newEvents(from, 1))[0]).toMatchObject({
        rule: 'forwarding-header',
        request: { version: 'token' },
      });
    });

    it("the guard's own user is exempt from the redirect (it reaches the metadata service directly)", () => {
      const before = emulatorRequests().length;
      const r = curlAs(
        'nobody',
        ['-o', '/dev/null', '-w', '%{http_code}', 'http://169.254.169.254/latest/meta-data/'],
        'nogroup',
      );
      expect(r.stdout).toBe('401'); // the emulator itself: IMDSv2 required
      expect(emulatorRequests().length).toBe(before + 1);
    });

    it('monitor mode (SIGHUP reload) lets the same requests through and records them', async () => {
      await reload('  mode: monitor\n');
      const from = events().length;
      const before = emulatorRequests().length;
      const v1 = curlAs(CLIENT_UID, [
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        'http://169.254.169.254/latest/meta-data/instance-id',
      ]);
      expect(v1.stdout).toBe('401'); // now from the emulator
      const xff = curlAs(CLIENT_UID, [
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        'PUT',
        '-H',
        'X-aws-ec2-metadata-token-ttl-seconds: 21600',
        '-H',
        'X-Forwarded-For: 203.0.113.5',
        'http://169.254.169.254/latest/api/token',
      ]);
      expect(xff.stdout).toBe('403'); // the metadata service refuses a proxied token PUT itself
      const got = await newEvents(from, 2);
      expect(got.map((e) => [e.mode, e.decision, e.action, e.rule, e.upstream?.status])).toEqual([
        ['monitor', 'deny', 'flagged', 'default-deny-v1', 401],
        ['monitor', 'deny', 'flagged', 'forwarding-header', 403],
      ]);
      expect(got.every((e) => e.alert)).toBe(true);
      expect(emulatorRequests().length).toBe(before + 2);
    });

    it('trap mode forwards nothing to the metadata service', async () => {
      await reload(
        '  mode: trap\n  trap:\n    honeyCredentials:\n      role: ops-admin\n      accessKeyId: ASIAHONEYTRAP0000001\n      secretAccessKey: honey-secret-access-key-0001\n',
      );
      ns.exec('curl', ['-s', '-X', 'DELETE', 'http://127.0.0.1:1339/requests']);
      const from = events().length;
      const boto = ns.run('setpriv', [...AS_CLIENT, PY, '-c', BOTOCORE], { env: CLIENT_ENV });
      expect(boto.status, boto.stderr).toBe(0);
      expect(JSON.parse(boto.stdout)).toMatchObject({ ok: true, role: 'ops-admin' });
      const curl = curlAs(CLIENT_UID, [
        '-w',
        ' %{http_code}',
        'http://169.254.169.254/latest/meta-data/instance-id',
      ]);
      expect(curl.stdout).toMatch(/^i-0[0-9a-f]{16} 200$/);
      const missing = curlAs(CLIENT_UID, [
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        'http://169.254.169.254/latest/nothing-here',
      ]);
      expect(missing.stdout).toBe('404');
      const got = await newEvents(from, 5);
      expect(got.length).toBeGreaterThanOrEqual(5);
      expect(got.every((e) => e.action === 'trapped' && e.alert && e.upstream === undefined)).toBe(true);
      expect(emulatorRequests()).toEqual([]);
      expect(readFileSync(eventsFile, 'utf8')).not.toContain('honey-secret-access-key');
    });

    it('SIGTERM stops the guard gracefully', async () => {
      const exited = new Promise<number | null>((resolve) => guard.once('exit', (code) => resolve(code)));
      process.kill(guard.pid as number, 'SIGTERM');
      expect(await exited).toBe(0);
      expect(guardStderr).toContain('SIGTERM: shutting down');
    });
  });
}
