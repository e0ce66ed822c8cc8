#!/usr/bin/env node
/**
 * Builds the optional native addon native/addon (Node-API: netlink sock_diag lookups for process
 * attribution, see docs/attribution.md; unix datagram sockets for syslog over /dev/log). `npm
 * install` runs this as the package's install script.
 *
 * Optional on purpose: when it cannot be built (not Linux, no C compiler, no Node headers), this
 * prints one line saying so and exits 0; the guard then finds sockets through /proc/net/tcp, and
 * syslog works over UDP only.
 * Set IMDSGUARD_SKIP_NATIVE=1 to skip the build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native', 'addon');
const say = (msg) => process.stderr.write(`imdsguard: ${msg}\n`);

/** The npm on PATH, followed to its package folder (npm/bin/npm-cli.js -> npm/). */
function npmOnPath() {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(d, 'npm');
    if (d && existsSync(p)) {
      try {
        return dirname(dirname(realpathSync(p)));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function nodeGyp() {
  // npm tells its scripts where its bundled node-gyp is; otherwise look beside this node's npm, or
  // the npm on PATH (a Node from scripts/with-node has none of its own).
  const gypIn = (npmDir) => npmDir && join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const candidates = [
    process.env.npm_config_node_gyp,
    gypIn(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm')),
    gypIn(npmOnPath()),
  ];
  return candidates.find((p) => p && existsSync(p));
}

function main() {
  if (process.env.IMDSGUARD_SKIP_NATIVE === '1') return say('native addon skipped (IMDSGUARD_SKIP_NATIVE=1)');
  if (process.platform !== 'linux') return; // sock_diag is Linux-only; nothing to say elsewhere.
  const gyp = nodeGyp();
  if (!gyp)
    return say(
      'native addon not built: node-gyp not found; attribution reads /proc/net/tcp, syslog needs UDP',
    );
  const args = [gyp, 'rebuild', '-C', dir];
  // Headers shipped with this node (Debian, NodeSource, the npm `node` package) avoid a download.
  const prefix = join(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  const r = spawnSync(process.execPath, args, {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status === 0) return;
  const lines = `${r.stderr ?? ''}${r.stdout ?? ''}`
    .split('\n')
    .filter((l) => /error|ERR!/.test(l))
    .slice(0, 5);
  say(
    `native addon not built (${r.error?.message ?? `node-gyp exited ${r.status}`}); attribution reads /proc/net/tcp, syslog needs UDP`,
  );
  for (const l of lines) say(`  ${l.trim()}`);
}

main();
