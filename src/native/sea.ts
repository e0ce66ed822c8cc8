import { getAsset, isSea } from 'node:sea';

/**
 * The one-file release (`npm run release`, scripts/release.js) is a Node single-executable
 * application: one bundled script, plus assets the build embeds beside it. These names are the
 * contract between that build and the code that reads them.
 */
export const ASSETS = {
  /** The native addon (native/addon), loaded by src/native/addon.ts. */
  addon: 'imdsguard.node',
  /** The attribution worker's bundled script, run by src/guard/attribution/threaded.ts. */
  attributionWorker: 'attribution-worker.js',
} as const;

/** True inside the release executable; false under `node dist/...` and the tests. */
export function inExecutable(): boolean {
  return isSea();
}

/** An asset embedded in the executable, or undefined outside one (or when the build left it out). */
export function executableAsset(name: string): Uint8Array | undefined {
  if (!isSea()) return undefined;
  try {
    return new Uint8Array(getAsset(name));
  } catch {
    return undefined;
  }
}

/** A script embedded in the executable, as text. */
export function executableScript(name: string): string | undefined {
  const bytes = executableAsset(name);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}
