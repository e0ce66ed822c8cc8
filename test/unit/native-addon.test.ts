import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addonDirectories, unsafeDirectory } from '../../src/native/addon.js';

/** Where the release executable may write its embedded addon for the moment of loading it. */
describe('the embedded addon: where it may be written', () => {
  it('tries the configured and systemd directories first, then the temporary ones, each once', () => {
    const dirs = addonDirectories({
      IMDSGUARD_RUNTIME_DIR: '/run/a',
      RUNTIME_DIRECTORY: '/run/imdsguard:/run/other',
      STATE_DIRECTORY: 'relative/ignored:/var/lib/imdsguard',
    });
    expect(dirs.slice(0, 4)).toEqual(['/run/a', '/run/imdsguard', '/run/other', '/var/lib/imdsguard']);
    expect(dirs.slice(4)).toEqual([...new Set([tmpdir(), '/dev/shm'])]);
    expect(addonDirectories({})).toEqual([...new Set([tmpdir(), '/dev/shm'])]);
  });

  it('refuses a directory others may rename entries in, unless sticky, and one another user owns', () => {
    const base = mkdtempSync(join(tmpdir(), 'imdsg-addon-dir-'));
    const [o, st, m] = ['open', 'sticky', 'mine'].map((n) => join(base, n)) as [string, string, string];
    mkdirSync(o, { mode: 0o700 });
    mkdirSync(st, { mode: 0o700 });
    mkdirSync(m, { mode: 0o700 });
    chmodSync(o, 0o777);
    chmodSync(st, 0o1777);
    expect(unsafeDirectory(o)).toBe('writable by others and not sticky');
    expect(unsafeDirectory(st)).toBeUndefined();
    expect(unsafeDirectory(m)).toBeUndefined();
    const file = join(base, 'file');
    writeFileSync(file, '');
    expect(unsafeDirectory(file)).toBe('not a directory');
    expect(unsafeDirectory(join(base, 'missing'))).toBe('ENOENT');
    if (process.getuid?.() === 0) {
      chownSync(m, 65534, 65534);
      expect(unsafeDirectory(m)).toBe('owned by uid 65534');
    }
    rmSync(base, { recursive: true, force: true });
  });
});
