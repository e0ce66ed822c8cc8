import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ASSETS, executableAsset, inExecutable } from './sea.js';

/**
 * imdsguard's optional native addon (native/addon, Node-API): netlink sock_diag lookups for process
 * attribution, and unix datagram sockets for syslog. `npm install` builds it when it can
 * (scripts/build-native.js); every user of it has a way to work, or to say why not, without it.
 */
export interface NativeAddon {
  /** See native/addon/sockdiag.c. */
  sockDiagLookup(
    family: 4 | 6,
    src: Uint8Array,
    sport: number,
    dst: Uint8Array,
    dport: number,
  ): [state: number, uid: number, inode: number] | null;
  /** See native/addon/unixdgram.c. */
  unixDgramOpen(): number;
  unixDgramSend(fd: number, path: string, data: Buffer): void;
  unixDgramBind(fd: number, path: string): void;
  unixDgramRecv(fd: number): Buffer | null;
  unixDgramClose(fd: number): void;
}

export type AddonLoad = { addon: NativeAddon; reason?: undefined } | { addon?: undefined; reason: string };

const BUILT = join('native', 'addon', 'build', 'Release', 'imdsguard.node');
let cached: AddonLoad | undefined;

/** Finds the built addon above this module (dist/, src/ under vitest, build/ for the benches). */
export function findAddon(from: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  let dir = from;
  for (let i = 0; i < 8; i++) {
    const p = join(dir, BUILT);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** Loads the addon once per thread; `reason` says why it is not there, for a person. */
export function loadNativeAddon(): AddonLoad {
  if (cached) return cached;
  cached = load();
  return cached;
}

function load(): AddonLoad {
  if (process.platform !== 'linux') return { reason: 'the native addon is Linux-only' };
  if (inExecutable()) return loadEmbedded(process.env);
  const path = findAddon();
  if (path === undefined) return { reason: 'native addon not built (npm run build:native)' };
  try {
    return { addon: createRequire(import.meta.url)(path) as NativeAddon };
  } catch (err) {
    return { reason: `native addon failed to load: ${(err as Error).message}` };
  }
}

/**
 * Where the release executable may write its embedded addon for the moment it takes to load it:
 * IMDSGUARD_RUNTIME_DIR, systemd's RuntimeDirectory and StateDirectory, then the temporary
 * directory and /dev/shm. The first that accepts the file and can map it executable wins (a
 * noexec mount cannot), so one noexec /tmp or /run costs nothing but a try.
 */
export function addonDirectories(env: Readonly<Record<string, string | undefined>>): string[] {
  const listed = (v: string | undefined) => (v ?? '').split(':').filter((d) => d.startsWith('/'));
  const dirs = [
    ...listed(env['IMDSGUARD_RUNTIME_DIR']),
    ...listed(env['RUNTIME_DIRECTORY']),
    ...listed(env['STATE_DIRECTORY']),
    tmpdir(),
    '/dev/shm',
  ];
  return [...new Set(dirs)];
}

/**
 * Why a directory is unsafe to write code into, or undefined when it is safe: it must be owned by
 * this user or root, and nobody else may rename entries in it (not group- or world-writable, unless
 * sticky, as /tmp is).
 */
export function unsafeDirectory(dir: string): string | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'cannot be read';
  }
  if (!st.isDirectory()) return 'not a directory';
  const uid = process.getuid?.() ?? 0;
  if (st.uid !== uid && st.uid !== 0) return `owned by uid ${st.uid}`;
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return 'writable by others and not sticky';
  return undefined;
}

/**
 * Loads the addon embedded in the release executable: it is written into a fresh private directory
 * (mode 0700, made by mkdtemp, so no other user can reach or swap the file), loaded with
 * process.dlopen, and removed at once: the mapping outlives the file, and nothing is left behind.
 * Each thread that loads the addon (the attribution worker too) does this once.
 */
function loadEmbedded(env: Readonly<Record<string, string | undefined>>): AddonLoad {
  const bytes = executableAsset(ASSETS.addon);
  if (bytes === undefined) return { reason: 'this executable was built without the native addon' };
  const failures: string[] = [];
  for (const base of addonDirectories(env)) {
    const unsafe = unsafeDirectory(base);
    if (unsafe !== undefined) {
      failures.push(`${base}: ${unsafe}`);
      continue;
    }
    let dir: string | undefined;
    try {
      dir = mkdtempSync(join(base, 'imdsguard-addon-'));
      const file = join(dir, ASSETS.addon);
      writeFileSync(file, bytes, { mode: 0o500, flag: 'wx' });
      const mod: { exports: unknown } = { exports: {} };
      process.dlopen(mod, file);
      return { addon: mod.exports as NativeAddon };
    } catch (err) {
      failures.push(`${base}: ${(err as Error).message.split('\n')[0]}`);
    } finally {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    }
  }
  return { reason: `the embedded native addon could not be loaded (${failures.join('; ')})` };
}
