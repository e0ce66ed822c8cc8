/**
 * The release's JavaScript: the CLI and the attribution worker, each bundled by esbuild from the
 * TypeScript sources into one CommonJS script (Node's single-executable applications run one
 * CommonJS script). Also the notices of every third-party package the bundles contain.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

/** Output names; src/native/sea.ts names the same assets. */
export const BUNDLES = {
  main: 'imdsguard.js',
  worker: 'attribution-worker.js',
};

/**
 * zod re-exports every one of its ~40 message locales (300 KB of the guard's bundle) for
 * `z.locales`; imdsguard uses none but English, which zod loads by itself. The bundle gets English
 * alone: less to parse at every start.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)$/.test(args.resolveDir)
        ? { path: join(args.resolveDir, '..', 'locales', 'en.js'), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: dirname(args.path),
    }));
  },
};

/**
 * Bundles src/cli/main.ts and src/guard/attribution/worker.ts into `dir`. Dynamic imports stay
 * lazy inside the bundle (esbuild wraps each module in an init function), so `imdsguard guard`
 * evaluates the guard's modules and not the fleet's AWS SDK.
 */
export async function bundle({ root, dir, version, nodeMajor }) {
  const result = await build({
    absWorkingDir: root,
    entryPoints: {
      [BUNDLES.main.replace(/\.js$/, '')]: 'src/cli/main.ts',
      [BUNDLES.worker.replace(/\.js$/, '')]: 'src/guard/attribution/worker.ts',
    },
    outdir: dir,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${nodeMajor}`,
    // Readable stack traces: no renamed identifiers.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    plugins: [zodEnglishOnly],
    define: {
      IMDSGUARD_BUILD_VERSION: JSON.stringify(version),
      'import.meta.url': '__imdsguard_url',
    },
    // CommonJS has no import.meta; the code uses import.meta.url only outside the executable
    // (finding files of the npm package), so the script's own location stands in for it.
    banner: {
      js: "var __imdsguard_url = typeof __filename === 'string' && __filename.startsWith('/') ? require('node:url').pathToFileURL(__filename).href : 'file:///';",
    },
  });
  return { files: Object.values(BUNDLES).map((f) => join(dir, f)), metafile: result.metafile };
}

/** The package folder of a bundled input path (node_modules/@scope/name/... or node_modules/name/...). */
function packageDir(input) {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m?.[1];
}

/** The licence notices of every npm package in the bundles, one section each, sorted by name. */
export function thirdPartyNotices(root, metafile) {
  const dirs = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const d = packageDir(input);
    if (d) dirs.add(d);
  }
  const sections = [];
  for (const d of dirs) {
    const abs = join(root, d);
    const pkgFile = join(abs, 'package.json');
    if (!existsSync(pkgFile)) continue;
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
    if (!pkg.name || !pkg.version) continue;
    const licenceFile = readdirSync(abs).find((f) => /^(licen[cs]e|copying)(\..*)?$/i.test(f));
    const text = licenceFile
      ? readFileSync(join(abs, licenceFile), 'utf8').trim()
      : '(no licence file in the package)';
    sections.push({ id: `${pkg.name}@${pkg.version}`, licence: pkg.license ?? 'see below', text });
  }
  sections.sort((a, b) => a.id.localeCompare(b.id));
  const unique = [...new Map(sections.map((s) => [s.id, s])).values()];
  return [
    'imdsguard release executable: third-party software it contains',
    '',
    'Besides Node.js itself (https://github.com/nodejs/node/blob/main/LICENSE), the executable',
    'contains these npm packages, bundled into its script:',
    '',
    ...unique.flatMap((s) => [`==== ${s.id} (${s.licence})`, '', s.text, '']),
  ].join('\n');
}
