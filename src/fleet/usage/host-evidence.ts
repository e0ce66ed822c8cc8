/**
 * Host evidence: `imdsguard callers --json` output collected from hosts, joined to fleet usage so the
 * report names the process (exe, user) that still makes IMDSv1 calls on an instance.
 *
 * A file must say which instance it came from, in one of these ways (checked in this order):
 *   1. a top-level "instanceId" (or "instance_id"), e.g. the wrapper
 *        {"instanceId": "i-0abc...", "accountId": "...", "region": "...", "callers": [...]}
 *      which is what `{ echo '{"instanceId":"'$ID'","callers":'; imdsguard callers --json | jq .callers; echo '}'; }`
 *      or any collection script can write; `accountId` and `region` are optional;
 *   2. "instance": {"instanceId": ...} or "host": {"instanceId": ...};
 *   3. the file name: `<instance-id>.json` (e.g. collected as i-0abc123.json), or any name that
 *      contains one instance id (i- followed by 8 or 17 hex digits).
 * The callers list is "callers" (or "rows"), or the document itself when it is an array. Each caller
 * is read tolerantly: exe | executable | process.exe; user | username | uid; v1 | v1Calls | imdsv1;
 * v2 | v2Calls; lastSeen | last_seen; container.id. Unknown fields are ignored.
 *
 * Bounded: files of at most HOST_EVIDENCE_LIMITS.maxFileBytes, at most maxFiles files, maxCallers
 * callers per file (the rest ignored and counted).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ImdsguardError } from '../../errors.js';

/** Limits, with units. */
export const HOST_EVIDENCE_LIMITS = {
  /** Largest file read, bytes. */
  maxFileBytes: 16 * 1024 * 1024,
  /** Files read per run (a directory's *.json files count). */
  maxFiles: 100_000,
  /** Callers kept per file. */
  maxCallers: 10_000,
  /** Characters kept of an exe or user name. */
  maxText: 512,
} as const;

export interface HostCaller {
  exe: string | null;
  user: string | null;
  container: string | null;
  /** Kubernetes pod `namespace/name` (from the guard's caller summary); null when unknown. */
  pod: string | null;
  v1Calls: number;
  v2Calls: number;
  /** ISO 8601 or null */
  lastSeen: string | null;
}

export interface HostEvidence {
  instanceId: string;
  accountId: string | null;
  region: string | null;
  /** The file it came from. */
  source: string;
  callers: HostCaller[];
  /** Callers beyond maxCallers, ignored. */
  dropped: number;
}

const INSTANCE_RE = /\bi-(?:[0-9a-f]{17}|[0-9a-f]{8})\b/;

function text(v: unknown): string | null {
  if (typeof v === 'string' && v.length > 0) return v.slice(0, HOST_EVIDENCE_LIMITS.maxText);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

function count(...vs: unknown[]): number {
  for (const v of vs) {
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
    if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  }
  return 0;
}

function obj(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function toCaller(raw: unknown): HostCaller | null {
  const r = obj(raw);
  if (!r) return null;
  const proc = obj(r['process']);
  const container = obj(r['container']);
  const lastSeen = text(r['lastSeen'] ?? r['last_seen'] ?? r['lastV1']);
  return {
    exe: text(r['exe'] ?? r['executable'] ?? proc?.['exe']),
    user: text(r['user'] ?? r['username'] ?? r['uid']),
    container: text(container?.['id'] ?? r['containerId']),
    pod: null,
    v1Calls: count(r['v1'], r['v1Calls'], r['imdsv1']),
    v2Calls: count(r['v2'], r['v2Calls'], r['imdsv2']),
    lastSeen: lastSeen !== null && Number.isFinite(Date.parse(lastSeen)) ? lastSeen : null,
  };
}

/** PURE: parses one file's text. `source` is its path (for messages and the file-name fallback). */
export function parseHostEvidence(body: string, source: string): HostEvidence {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw new ImdsguardError('IMDSGUARD_E_HOST_EVIDENCE', `${source}: not JSON: ${(err as Error).message}`, {
      cause: err,
      hint: 'pass the output of `imdsguard callers --json`',
    });
  }
  const top = obj(doc);
  const idFrom = (o: Record<string, unknown> | null) => text(o?.['instanceId'] ?? o?.['instance_id']);
  const instanceId =
    idFrom(top) ??
    idFrom(obj(top?.['instance'])) ??
    idFrom(obj(top?.['host'])) ??
    INSTANCE_RE.exec(basename(source))?.[0] ??
    null;
  if (instanceId === null || !/^i-[0-9a-f]+$/.test(instanceId)) {
    throw new ImdsguardError('IMDSGUARD_E_HOST_EVIDENCE', `${source}: names no instance`, {
      hint: 'wrap it as {"instanceId": "i-...", "callers": [...]} or name the file <instance-id>.json',
    });
  }
  const list = Array.isArray(doc) ? doc : (top?.['callers'] ?? top?.['rows']);
  if (!Array.isArray(list)) {
    throw new ImdsguardError('IMDSGUARD_E_HOST_EVIDENCE', `${source}: no "callers" list`, {
      hint: 'pass the output of `imdsguard callers --json`',
    });
  }
  const callers: HostCaller[] = [];
  let dropped = 0;
  for (const raw of list) {
    if (callers.length >= HOST_EVIDENCE_LIMITS.maxCallers) {
      dropped += 1;
      continue;
    }
    const c = toCaller(raw);
    if (c) callers.push(c);
  }
  return {
    instanceId,
    accountId: text(top?.['accountId'] ?? top?.['account_id']),
    region: text(top?.['region']),
    source,
    callers,
    dropped,
  };
}

/** Reads files and directories (their *.json files, not recursive), relative to cwd. */
export async function loadHostEvidence(paths: readonly string[], cwd: string): Promise<HostEvidence[]> {
  const files: string[] = [];
  for (const p of paths) {
    const full = resolve(cwd, p);
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(full);
    } catch (err) {
      throw new ImdsguardError(
        'IMDSGUARD_E_HOST_EVIDENCE',
        `cannot read ${full}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (st.isDirectory()) {
      const names = (await readdir(full)).filter((n) => n.endsWith('.json')).sort();
      for (const n of names) files.push(join(full, n));
    } else files.push(full);
    if (files.length > HOST_EVIDENCE_LIMITS.maxFiles) {
      throw new ImdsguardError(
        'IMDSGUARD_E_HOST_EVIDENCE',
        `more than ${HOST_EVIDENCE_LIMITS.maxFiles} host evidence files`,
      );
    }
  }
  const out: HostEvidence[] = [];
  for (const f of files) {
    let body: string;
    try {
      const st = await stat(f);
      if (st.size > HOST_EVIDENCE_LIMITS.maxFileBytes) {
        throw new Error(`larger than ${HOST_EVIDENCE_LIMITS.maxFileBytes} bytes`);
      }
      body = await readFile(f, 'utf8');
    } catch (err) {
      throw new ImdsguardError('IMDSGUARD_E_HOST_EVIDENCE', `cannot read ${f}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    out.push(parseHostEvidence(body, f));
  }
  return out;
}

/** The v1 callers of an instance, most v1 calls first, merged over every file for that instance. */
export interface HostJoin {
  /** Files that matched the instance. */
  sources: string[];
  v1Callers: HostCaller[];
}

/**
 * PURE: indexes host evidence by instance id; the returned lookup gives an instance's merged v1
 * callers (a file that names an account or region only matches that account or region), or null
 * when no file is about that instance.
 */
export function indexHostEvidence(
  evidence: readonly HostEvidence[],
): (i: { accountId: string; region: string; instanceId: string }) => HostJoin | null {
  const byId = new Map<string, HostEvidence[]>();
  for (const e of evidence) {
    const list = byId.get(e.instanceId) ?? [];
    list.push(e);
    byId.set(e.instanceId, list);
  }
  return (i) => {
    const list = (byId.get(i.instanceId) ?? []).filter(
      (e) =>
        (e.accountId === null || e.accountId === i.accountId) && (e.region === null || e.region === i.region),
    );
    if (list.length === 0) return null;
    const merged = new Map<string, HostCaller>();
    for (const e of list) {
      for (const c of e.callers) {
        if (c.v1Calls <= 0) continue;
        const k = `${c.exe ?? ''}|${c.user ?? ''}|${c.container ?? ''}`;
        const prev = merged.get(k);
        if (!prev) merged.set(k, { ...c });
        else {
          prev.v1Calls += c.v1Calls;
          prev.v2Calls += c.v2Calls;
          if (c.lastSeen !== null && (prev.lastSeen === null || c.lastSeen > prev.lastSeen))
            prev.lastSeen = c.lastSeen;
        }
      }
    }
    return {
      sources: list.map((e) => e.source),
      v1Callers: [...merged.values()].sort(
        (a, b) => b.v1Calls - a.v1Calls || (a.exe ?? '').localeCompare(b.exe ?? ''),
      ),
    };
  };
}

/** "exe (user)" for a report cell; "(unattributed)" without an exe. */
export function describeCaller(c: HostCaller): string {
  const who = c.exe ?? '(unattributed)';
  const parts = [
    c.user !== null ? `user ${c.user}` : null,
    c.container !== null ? `container ${c.container.slice(0, 12)}` : null,
  ]
    .filter((x): x is string => x !== null)
    .join(', ');
  return parts ? `${who} (${parts})` : who;
}
