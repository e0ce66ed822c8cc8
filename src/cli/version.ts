import { readFileSync } from 'node:fs';

/** Set by the release build (scripts/release.js); absent under `node dist/...` and the tests. */
declare const IMDSGUARD_BUILD_VERSION: string | undefined;

/** The package version: fixed by the release build, else read once from package.json next to dist/ or src/. */
export const VERSION: string =
  typeof IMDSGUARD_BUILD_VERSION === 'string'
    ? IMDSGUARD_BUILD_VERSION
    : (
        JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
          version: string;
        }
      ).version;
