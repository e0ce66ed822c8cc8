import { realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inExecutable } from '../native/sea.js';
import type { ExecPath } from './sandbox.js';

/**
 * The argv that runs this very imdsguard: the Node binary running us plus dist/cli/main.js of this
 * installation (found from this module's own URL, so it works for a global npm install, a checkout
 * and a package alike), or the release executable alone. The unit's ExecStart and its rule hooks use
 * it; --bin overrides it.
 */
export function selfCommand(): string[] {
  // The release executable is the whole program.
  if (inExecutable()) return [process.execPath];
  const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  let resolved = main;
  try {
    resolved = realpathSync(main);
  } catch {
    // running from sources (tests): keep the computed path
  }
  return [process.execPath, resolved];
}

async function resolved(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path; // not there (yet): judged as given
  }
}

/**
 * The files the unit's ExecStart needs, as given and with symlinks resolved: every absolute word of
 * the command (node, main.js, or the --bin executable), and for main.js the node_modules folder of
 * its package, which npm link or a workspace may point elsewhere.
 */
export async function execPaths(self: readonly string[]): Promise<ExecPath[]> {
  const out: ExecPath[] = [];
  for (const given of self.filter(isAbsolute)) {
    out.push({ given, resolved: await resolved(given) });
    if (/\/dist\/cli\/main\.js$/.test(given)) {
      const modules = join(dirname(dirname(dirname(given))), 'node_modules');
      const r = await resolved(modules);
      if (r !== modules) out.push({ given: modules, resolved: r });
    }
  }
  return out;
}
