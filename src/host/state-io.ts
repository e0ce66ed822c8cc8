import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Backend, PATHS } from './types.js';

/**
 * The install record (PATHS.state under the root prefix): what install created, so uninstall removes
 * exactly that and doctor knows what to expect. Also the small file helpers the *-io.ts modules share.
 */

export interface InstallState {
  version: 1;
  backend: Backend;
  port: number;
  user: string;
  userCreated: boolean;
  ipv6: boolean;
  bridges: string[];
  /** Pod interface patterns (absent in records of older versions). */
  podInterfaces?: string[];
  failMode: string;
  /** Tables the first install created (e.g. "ip nat" by iptables-nft); deleted again if left empty. */
  createdTables: string[];
  /**
   * route_localnet switches older versions turned on, with the value they had before (now recorded
   * in PATHS.routeLocalnet; kept so that uninstall still restores them).
   */
  sysctl: Array<{ path: string; previous: string }>;
  /** Files install wrote, with the digest of what it wrote (a changed file is kept on uninstall). */
  files: Array<{ path: string; sha256: string }>;
  /** Directories install created (removed on uninstall when empty). */
  createdDirs: string[];
}

export function rooted(root: string, path: string): string {
  return root === '/' ? path : join(root, path);
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** mkdir -p that returns the directories it created, outermost first. */
export async function mkdirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  let d = dir;
  while (!(await exists(d))) {
    missing.unshift(d);
    const parent = dirname(d);
    if (parent === d) break;
    d = parent;
  }
  if (missing.length > 0) await mkdir(dir, { recursive: true, mode: 0o755 });
  return missing;
}

export function emptyState(opts: {
  backend: Backend;
  port: number;
  user: string;
  ipv6: boolean;
  bridges: readonly string[];
  podInterfaces: readonly string[];
  failMode: string;
}): InstallState {
  return {
    version: 1,
    backend: opts.backend,
    port: opts.port,
    user: opts.user,
    userCreated: false,
    ipv6: opts.ipv6,
    bridges: [...opts.bridges],
    podInterfaces: [...opts.podInterfaces],
    failMode: opts.failMode,
    createdTables: [],
    sysctl: [],
    files: [],
    createdDirs: [],
  };
}

export async function readState(root: string): Promise<InstallState | undefined> {
  const text = await readText(rooted(root, PATHS.state));
  if (text === undefined) return undefined;
  try {
    const s = JSON.parse(text) as InstallState;
    return s.version === 1 ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function writeState(root: string, state: InstallState): Promise<void> {
  const path = rooted(root, PATHS.state);
  for (const d of await mkdirs(dirname(path))) {
    if (!state.createdDirs.includes(d)) state.createdDirs.push(d);
  }
  const text = `${JSON.stringify(state, null, 2)}\n`;
  if ((await readText(path)) === text) return;
  await writeFile(path, text, { mode: 0o644 });
}
