import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The argv that runs this very imdsguard: the Node binary running us plus dist/cli/main.js of this
 * installation (found from this module's own URL, so it works for a global npm install, a checkout
 * and a package alike). The unit's ExecStart and its rule hooks use it; --bin overrides it.
 */
export function selfCommand(): string[] {
  const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  let resolved = main;
  try {
    resolved = realpathSync(main);
  } catch {
    // running from sources (tests): keep the computed path
  }
  return [process.execPath, resolved];
}
