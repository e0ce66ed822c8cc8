#!/usr/bin/env node
/**
 * Builds the optional native addon native/sockdiag (netlink sock_diag lookups for process
 * attribution; see docs/attribution.md). `npm install` runs this as the package's install script.
 *
 * Optional on purpose: when it cannot be built (not Linux, no C compiler, no Node headers), this
 * prints one line saying so and exits 0, and the guard finds sockets through /proc/net/tcp instead.
 * Set IMDSGUARD_SKIP_NATIVE=1 to skip the build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native', 'sockdiag');
const say = (msg) => process.stderr.write(`imdsguard: ${msg}\n`);

function nodeGyp() {
  // npm tells its scripts where its bundled node-gyp is; otherwise look beside this node's npm.
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ];
  return candidates.find((p) => p && existsSync(p));
}

function main() {
  if (process.env.IMDSGUARD_SKIP_NATIVE === '1')
    return say('native sock_diag addon skipped (IMDSGUARD_SKIP_NATIVE=1)');
  if (process.platform !== 'linux') return; // sock_diag is Linux-only; nothing to say elsewhere.
  const gyp = nodeGyp();
  if (!gyp)
    return say('native sock_diag addon not built: node-gyp not found; attribution reads /proc/net/tcp');
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
    `native sock_diag addon not built (${r.error?.message ?? `node-gyp exited ${r.status}`}); attribution reads /proc/net/tcp instead`,
  );
  for (const l of lines) say(`  ${l.trim()}`);
}

main();
