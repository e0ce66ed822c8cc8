import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  const path = findAddon();
  if (path === undefined) return { reason: 'native addon not built (npm run build:native)' };
  try {
    return { addon: createRequire(import.meta.url)(path) as NativeAddon };
  } catch (err) {
    return { reason: `native addon failed to load: ${(err as Error).message}` };
  }
}
