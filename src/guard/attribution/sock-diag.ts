import { loadNativeAddon } from '../../native/addon.js';

/**
 * The sock_diag part of the optional native addon (native/addon): one exact TCP socket lookup by 4-tuple through netlink
 * sock_diag, which returns the socket's state, owner uid and inode in microseconds. Without it the
 * resolver reads /proc/net/tcp, which walks the kernel's whole connection hash on every read.
 *
 * `npm install` builds the addon when it can (scripts/build-native.js); when it is missing, or the
 * kernel refuses netlink (a sandbox such as gVisor), attribution still works, more slowly.
 */

/** [TCP state (as in /proc/net/tcp), owner uid, socket inode]; null when no such socket exists. */
export type DiagAnswer = [state: number, uid: number, inode: number];

export interface SockDiag {
  /**
   * The socket whose own end is src:sport and whose peer is dst:dport, in the caller's network
   * namespace. Addresses: 4 bytes (family 4) or 16 (family 6), network order. Throws on a kernel
   * error (the error's `code` is the errno name).
   */
  lookup(family: 4 | 6, src: Uint8Array, sport: number, dst: Uint8Array, dport: number): DiagAnswer | null;
}

export interface SockDiagLoad {
  diag?: SockDiag;
  /** Why the addon is not in use, for a person (doctor, stats). */
  reason?: string;
}

let cached: SockDiagLoad | undefined;

/**
 * Loads the addon once per thread and checks that the kernel answers (a lookup of a socket that
 * cannot exist must come back null). IMDSGUARD_SOCK_DIAG=off disables it.
 */
export function loadSockDiag(env: NodeJS.ProcessEnv = process.env): SockDiagLoad {
  if (env.IMDSGUARD_SOCK_DIAG === 'off') return { reason: 'disabled by IMDSGUARD_SOCK_DIAG=off' };
  if (cached) return cached;
  cached = probe();
  return cached;
}

function probe(): SockDiagLoad {
  if (process.platform !== 'linux') return { reason: 'sock_diag is Linux-only' };
  const loaded = loadNativeAddon();
  if (!loaded.addon) return { reason: `${loaded.reason}; using /proc/net/tcp` };
  const diag: SockDiag = { lookup: loaded.addon.sockDiagLookup };
  try {
    // Port 0 on both ends: no socket has it, so a working kernel answers "none".
    const zero = new Uint8Array(4);
    if (diag.lookup(4, zero, 0, zero, 0) !== null) return { reason: 'sock_diag gave an unexpected answer' };
  } catch (err) {
    return { reason: `sock_diag unavailable: ${(err as Error).message}` };
  }
  return { diag };
}
