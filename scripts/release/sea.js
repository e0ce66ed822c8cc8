/**
 * One single-executable application per architecture: a Node binary from the npm registry's
 * `node-linux-<arch>` package (the one the build runs on, for its own architecture), the bundled
 * CLI as its script (with V8's code cache for the build's own architecture), and the native addon
 * and the attribution worker as assets.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';

/** The fuse Node's single-executable support looks for, and postject flips. */
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export const ARCHES = {
  x64: { deb: 'amd64', triplet: 'x86_64-linux-gnu' },
  arm64: { deb: 'arm64', triplet: 'aarch64-linux-gnu' },
};

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${(r.stderr || r.stdout || '').trim()}`);
  }
  return r.stdout;
}

export function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** True when the file contains the single-executable fuse (an official, statically linked node). */
export function hasSeaFuse(file) {
  const fuse = Buffer.from(`${SEA_FUSE}:`);
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(8 * 1024 * 1024);
    let carry = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) return false;
      const buf = Buffer.concat([carry, chunk.subarray(0, n)]);
      if (buf.includes(fuse)) return true;
      carry = buf.subarray(Math.max(0, buf.length - fuse.length));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The Node binary to embed for `arch`, at exactly the running Node's version (the blob format and
 * the code cache belong to one version). The running binary when it is an official one of that
 * architecture; otherwise `node-linux-<arch>` from the npm registry, cached under `cacheDir`.
 */
export function nodeBinary(arch, cacheDir, log) {
  const version = process.versions.node;
  if (arch === process.arch && hasSeaFuse(process.execPath)) return process.execPath;
  const dir = join(cacheDir, `node-linux-${arch}-${version}`);
  const bin = join(dir, 'package', 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  log(`fetching node-linux-${arch}@${version} from the npm registry`);
  const tgz = run('npm', ['pack', `node-linux-${arch}@${version}`, '--silent', '--pack-destination', dir])
    .trim()
    .split('\n')
    .pop();
  run('tar', ['-xzf', join(dir, tgz), '-C', dir, 'package/bin/node']);
  if (!hasSeaFuse(bin)) throw new Error(`${bin} has no single-executable fuse`);
  return bin;
}

/** The C compiler for `arch`: the host's cc for its own architecture, else the Debian cross compiler. */
export function compilerFor(arch) {
  if (arch === process.arch) return which('cc') ?? which('gcc');
  return which(`${ARCHES[arch].triplet}-gcc`);
}

/**
 * Compiles native/addon for `arch` (Node-API: one .node works for every Node 22+), with the flags
 * of its binding.gyp. Returns the file, or a reason it could not.
 */
export function buildAddon({ root, arch, out }) {
  const cc = compilerFor(arch);
  const built = join(root, 'native', 'addon', 'build', 'Release', 'imdsguard.node');
  if (!cc && arch === process.arch && existsSync(built)) return { file: built };
  if (!cc) {
    return {
      reason:
        arch === process.arch
          ? 'no C compiler (cc)'
          : `no cross compiler ${ARCHES[arch].triplet}-gcc (Debian: apt-get install gcc-${ARCHES[arch].triplet} libc6-dev-${arch}-cross)`,
    };
  }
  const include = nodeHeaders();
  if (!include) return { reason: 'no Node-API headers (node_api.h) beside this node' };
  const src = ['addon.c', 'sockdiag.c', 'unixdgram.c'].map((f) => join(root, 'native', 'addon', f));
  try {
    compile(cc, include, src, out);
  } catch (err) {
    return { reason: `${basename(cc)} failed: ${err.message.split('\n').slice(0, 3).join(' ')}` };
  }
  const strip = arch === process.arch ? which('strip') : which(`${ARCHES[arch].triplet}-strip`);
  if (strip) run(strip, ['--strip-unneeded', out]);
  return { file: out };
}

function compile(cc, include, src, out) {
  run(cc, [
    '-shared',
    '-fPIC',
    '-std=gnu11',
    '-O2',
    '-Wall',
    '-Wextra',
    '-D_FILE_OFFSET_BITS=64',
    `-I${include}`,
    '-o',
    out,
    ...src,
  ]);
}

/** include/node of the running Node (the npm `node` package and official tarballs ship it). */
function nodeHeaders() {
  const candidates = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(process.execPath, '..', '..', 'include', 'node'),
  ];
  return candidates.find((d) => d && existsSync(join(d, 'node_api.h')));
}

/**
 * Writes the executable: the preparation blob from `node --experimental-sea-config`, injected with
 * postject into a copy of the Node binary (stripped first when a strip for the architecture exists:
 * 17 MB of debug information and symbols less; Node-API addons link against the dynamic symbols,
 * which stay).
 */
export function buildExecutable({ root, arch, work, main, assets, node, out, log }) {
  const config = join(work, `sea-config-${arch}.json`);
  const blob = join(work, `sea-${arch}.blob`);
  writeFileSync(
    config,
    JSON.stringify(
      {
        main,
        output: blob,
        disableExperimentalSEAWarning: true,
        // V8's code cache is specific to the architecture that made it: only for the build's own.
        useCodeCache: arch === process.arch,
        useSnapshot: false,
        assets,
      },
      null,
      2,
    ),
  );
  run(process.execPath, ['--experimental-sea-config', config], { cwd: work });
  copyFileSync(node, out);
  chmodSync(out, 0o755);
  const strip = arch === process.arch ? which('strip') : which(`${ARCHES[arch].triplet}-strip`);
  if (strip) run(strip, ['--strip-all', out]);
  else log(`${arch}: no strip for this architecture; the executable keeps Node's debug symbols`);
  const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
  // postject (LIEF) prints harmless warnings about note sections; shown only when it fails.
  run(process.execPath, [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
  return { size: statSync(out).size };
}
