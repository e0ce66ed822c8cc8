/**
 * A --import hook for footprint tests: appends every module URL the process resolves (ESM imports
 * and require() calls alike, node: built-ins included) to the file named by IMDSGUARD_TRACE_MODULES.
 * Uses module.registerHooks (Node 22.15+), which runs in the process's own thread.
 */
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const out = process.env.IMDSGUARD_TRACE_MODULES;
if (out) {
  registerHooks({
    resolve(specifier, context, next) {
      const result = next(specifier, context);
      appendFileSync(out, `${result.url}\n`);
      return result;
    },
  });
}
