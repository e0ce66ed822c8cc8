import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/index.js';
import { FILE_MARK } from '../../src/host/files.js';
import { PACKAGE_FILE_MARK, PACKAGE_PATHS, packageFiles, packageUseradd } from '../../src/host/package.js';
import { PATHS } from '../../src/host/types.js';

/** The files of the .deb (scripts/release/deb.js writes them; test/e2e/release.test.ts inspects the package). */
describe('the package files', () => {
  const files = packageFiles();
  const file = (path: string) => files.find((f) => f.path === path);

  it('a vendor unit that runs the packaged executable, failing closed, the backend detected on the host', () => {
    const unit = file(PACKAGE_PATHS.unit);
    expect(unit).toMatchObject({ mode: 0o644, conffile: false });
    expect(unit?.content).toMatch(
      /^ExecStart=\/usr\/bin\/imdsguard guard --config \/etc\/imdsguard\/config\.yaml /m,
    );
    expect(unit?.content).toMatch(
      /^ExecStartPre=\+\/usr\/bin\/imdsguard install --apply --rules-only --user imdsguard --port 16925 --force$/m,
    );
    expect(unit?.content).not.toContain('--backend');
  });

  it('the config and env files are conffiles that uninstall leaves to dpkg, and the config is valid', () => {
    for (const path of [PATHS.config, PATHS.env]) {
      const f = file(path);
      expect(f).toMatchObject({ mode: 0o640, conffile: true });
      expect(f?.content.split('\n')[0]).toBe(PACKAGE_FILE_MARK);
      expect(f?.content.startsWith(FILE_MARK)).toBe(false);
    }
    const cfg = parseConfig(parseYaml(file(PATHS.config)?.content ?? ''));
    expect(cfg.events.db).toBe('/var/lib/imdsguard/events.db');
  });

  it('creates the same system user as install', () => {
    expect(packageUseradd()).toEqual([
      'useradd',
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      '/var/lib/imdsguard',
      '--shell',
      '/usr/sbin/nologin',
      '--comment',
      'imdsguard IMDS guard',
      'imdsguard',
    ]);
  });
});
