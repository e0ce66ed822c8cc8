/**
 * A --import hook for footprint tests: appends every module URL the process resolves (ESM imports
 * and require() calls alike, node: built-ins included) to the file named by IMDSGUARD_TRACE_MODULES.
 * Uses module.registerHooks (Node 22.15+), which runs in the process's own thread. At exit it also
 * appends the built-in modules Node loaded for itself (`node-internal:NAME`, from
 * process.moduleLoadList): those never pass through a resolve hook, yet cost start-up time and memory.
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
  process.on('exit', () => {
    const internal = process.moduleLoadList
      .filter((m) => m.startsWith('NativeModule '))
      .map((m) => `node-internal:${m.slice('NativeModule '.length)}\n`);
    appendFileSync(out, internal.join(''));
  });
}
