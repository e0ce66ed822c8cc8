import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../config/index.js';
import { createEmulator } from '../emulator/index.js';
import type { EventRecorder, GuardEvent } from '../guard/events/types.js';
import { wireGuard } from '../guard/wire.js';
import { inExecutable } from '../native/sea.js';
import { DEMO_ROLE_RULE, type HttpStep, SCENARIOS, type Scenario } from './scenarios.js';

/**
 * The demo: an emulator (IMDSv2 required) and a guard on loopback, real clients and attacks replayed
 * through the guard, one verdict per scenario. No root, no network beyond loopback.
 */

export interface DemoOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** Events file; default a new temp directory's events.jsonl. */
  eventsFile?: string;
  /** Python with botocore; default /usr/bin/python3. */
  python?: string;
  /** Node binary for the SDK v3 client; default the running one. */
  node?: string;
  log?: (message: string) => void;
}

export interface Verdict {
  id: string;
  title: string;
  expected: string;
  decision: string;
  rule: string;
  status: number | null;
  ok: boolean;
  skipped?: string;
  detail?: string;
  events: number;
}

export interface DemoResult {
  ok: boolean;
  verdicts: Verdict[];
  eventsFile: string;
  events: number;
  guardUrl: string;
  emulatorUrl: string;
}

const CHILD_TIMEOUT_MS = 20_000;

function run(
  cmd: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ code: number; stdout: string; stderr: string; missing: boolean }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: CHILD_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : 1) : 0,
        stdout: String(stdout),
        stderr: String(stderr),
        missing: e?.code === 'ENOENT',
      });
    });
  });
}

function httpCall(url: string, step: HttpStep, token?: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  const named: Record<string, string> = { ...step.headers };
  const t = token ?? step.token;
  if (t !== undefined) named['x-aws-ec2-metadata-token'] = t;
  // raw pairs: padding lines first (node sends an array of headers as it is, with no Host of its own)
  if (!Object.keys(named).some((k) => k.toLowerCase() === 'host')) named['host'] = u.host;
  const headers: string[] = [];
  for (let i = 0; i < (step.padding ?? 0); i++) headers.push('TE', 'x');
  for (const [k, v] of Object.entries(named)) headers.push(k, v);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: Number(u.port), method: step.method, path: step.path, headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The compiled SDK v3 client beside this module (dist/demo/clients), or in dist/ from the sources. */
function sdkClientPath(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    join(here, 'clients', 'sdk-v3.js'),
    join(here, '..', '..', 'dist', 'demo', 'clients', 'sdk-v3.js'),
  ];
  return candidates.find((p) => existsSync(p));
}

const BOTOCORE_SCRIPT = `
import json, os, sys
try:
    from botocore.utils import InstanceMetadataFetcher
except ImportError:
    print(json.dumps({"missing": True})); sys.exit(3)
f = InstanceMetadataFetcher(timeout=3, num_attempts=1, base_url=os.environ["IMDSGUARD_DEMO_ENDPOINT"])
c = f.retrieve_iam_role_credentials()
print(json.dumps({"ok": bool(c.get("access_key")) and bool(c.get("secret_key")), "role": c.get("role_name")}))
sys.exit(0 if c.get("access_key") else 1)
`;

function expectedText(s: Scenario): string {
  const e = s.expected;
  return `${e.decision} (${e.rules.join(' + ')}) ${e.status}${e.token ? `, token ${e.token} (alert)` : ''}`;
}

function summarize(
  s: Scenario,
  events: GuardEvent[],
  status: number | null,
  clientOk: boolean,
  detail?: string,
): Verdict {
  const rules = [...new Set(events.map((e) => e.rule))];
  const decisions = [...new Set(events.map((e) => e.decision))];
  const decision = decisions.length === 1 ? (decisions[0] as string) : decisions.length === 0 ? '-' : 'mixed';
  const exp = s.expected;
  const ok =
    clientOk &&
    events.length > 0 &&
    decision === exp.decision &&
    rules.every((r) => exp.rules.includes(r)) &&
    status === exp.status &&
    (exp.token === undefined || events.every((e) => e.token?.status === exp.token && e.alert));
  const v: Verdict = {
    id: s.id,
    title: s.title,
    expected: expectedText(s),
    decision,
    rule: rules.join(' + ') || '-',
    status,
    ok,
    events: events.length,
  };
  if (detail !== undefined) v.detail = detail;
  return v;
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const log = options.log ?? (() => {});
  const eventsFile =
    options.eventsFile ?? join(mkdtempSync(join(tmpdir(), 'imdsguard-demo-')), 'events.jsonl');
  const emulator = createEmulator({
    settings: { tokens: 'required' },
    listen: [{ host: '127.0.0.1', port: 0 }],
  });
  await emulator.start();
  const seen: GuardEvent[] = [];
  const memory: EventRecorder = {
    record: (e) => {
      seen.push(e);
    },
    close: async () => {},
  };
  const config = parseConfig({
    guard: {
      mode: 'enforce',
      listen: ['127.0.0.1:0'],
      upstream: emulator.url,
      rules: [
        {
          name: DEMO_ROLE_RULE,
          path: '/latest/meta-data/iam/security-credentials/',
          version: 'v1',
          action: 'deny',
          reason: 'instance credentials are served over IMDSv2 only',
        },
      ],
    },
    events: { file: eventsFile },
  });
  let wired: Awaited<ReturnType<typeof wireGuard>> | undefined;
  try {
    wired = await wireGuard({ config, stdout: { write: () => true }, log, extraRecorders: [memory] });
    await wired.guard.start();
    const guard = wired.guard;
    const url = guard.url;
    const baseEnv: Record<string, string | undefined> = { ...options.env };
    for (const k of Object.keys(baseEnv)) if (/^AWS_/.test(k)) delete baseEnv[k];
    const settle = async () => {
      const end = Date.now() + 2000;
      while ((guard.stats().inFlight > 0 || guard.stats().pendingEvents > 0) && Date.now() < end)
        await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 20));
    };
    const verdicts: Verdict[] = [];
    for (const s of SCENARIOS) {
      const from = seen.length;
      let status: number | null = null;
      let clientOk = true;
      let detail: string | undefined;
      let skipped: string | undefined;
      if (s.kind === 'sdk-v3') {
        const script = sdkClientPath();
        if (!script) {
          skipped = inExecutable()
            ? 'the SDK v3 client runs only from the npm package (node dist/cli/main.js demo)'
            : 'the compiled SDK v3 client is missing (run npm run build)';
        } else {
          const r = await run(options.node ?? process.execPath, [script], {
            ...baseEnv,
            AWS_EC2_METADATA_SERVICE_ENDPOINT: url,
            AWS_EC2_METADATA_DISABLED: 'false',
          });
          const out = (() => {
            try {
              return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
                ok?: boolean;
                error?: string;
              };
            } catch {
              return {};
            }
          })();
          clientOk = r.code === 0 && out.ok === true;
          status = clientOk ? 200 : null;
          detail = clientOk
            ? 'got credentials'
            : `client failed: ${out.error ?? r.stderr.trim().slice(0, 200)}`;
        }
      } else if (s.kind === 'botocore') {
        const python = options.python ?? '/usr/bin/python3';
        if (!existsSync(python)) skipped = `${python} not found`;
        else {
          const r = await run(python, ['-c', BOTOCORE_SCRIPT], {
            ...baseEnv,
            IMDSGUARD_DEMO_ENDPOINT: url,
            AWS_CONFIG_FILE: '/dev/null',
            AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
          });
          if (r.code === 3) skipped = 'botocore is not installed for /usr/bin/python3';
          else {
            clientOk = r.code === 0 && r.stdout.includes('"ok": true');
            status = clientOk ? 200 : null;
            detail = clientOk
              ? 'got credentials'
              : `client failed: ${r.stderr.trim().split('\n').pop() ?? ''}`;
          }
        }
      } else if (s.kind === 'curl') {
        const step = s.step as HttpStep;
        const r = await run(
          'curl',
          ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '5', `${url}${step.path}`],
          baseEnv,
        );
        if (r.missing) {
          status = (await httpCall(url, step)).status;
          detail = 'curl not found: a plain HTTP request with a curl User-Agent';
        } else {
          status = Number(r.stdout.trim()) || null;
          detail = 'real curl';
        }
      } else {
        const step = s.step as HttpStep;
        let token: string | undefined;
        if (step.withToken) {
          const t = await httpCall(url, {
            method: 'PUT',
            path: '/latest/api/token',
            headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
          });
          token = t.body;
          await settle();
        }
        const fromAttack = seen.length;
        status = (await httpCall(url, step, token)).status;
        await settle();
        const events = seen.slice(fromAttack);
        verdicts.push(summarize(s, events, status, true, s.why));
        continue;
      }
      await settle();
      if (skipped !== undefined) {
        verdicts.push({
          id: s.id,
          title: s.title,
          expected: expectedText(s),
          decision: '-',
          rule: '-',
          status: null,
          ok: true,
          skipped,
          events: 0,
        });
        continue;
      }
      verdicts.push(summarize(s, seen.slice(from), status, clientOk, detail));
    }
    const result: DemoResult = {
      ok: verdicts.every((v) => v.ok),
      verdicts,
      eventsFile,
      events: seen.length,
      guardUrl: url,
      emulatorUrl: emulator.url,
    };
    return result;
  } finally {
    await wired?.close();
    await emulator.close();
  }
}

/** The verdict table for a person. */
export function renderVerdicts(result: DemoResult): string {
  const head = ['scenario', 'expected', 'decision', 'rule', 'status', 'OK?'];
  const rows = result.verdicts.map((v) => [
    v.title,
    v.expected,
    v.skipped ? 'skipped' : v.decision,
    v.skipped ? v.skipped : v.rule,
    v.status === null ? '-' : String(v.status),
    v.skipped ? 'skip' : v.ok ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  const passed = result.verdicts.filter((v) => v.ok && !v.skipped).length;
  const skipped = result.verdicts.filter((v) => v.skipped).length;
  const failed = result.verdicts.filter((v) => !v.ok).length;
  out.push('');
  out.push(
    `${failed === 0 ? 'all verdicts match' : `${failed} verdict(s) do NOT match`}: ${passed} ok, ${skipped} skipped, ${failed} wrong.`,
  );
  out.push(`events: ${result.events} JSON lines in ${result.eventsFile}`);
  return `${out.join('\n')}\n`;
}
