import { describe, expect, it } from 'vitest';
import { isImdsguardError } from '../../src/errors.js';
import { assertUnitCanRun, sandboxConflicts, sandboxHiddenPaths } from '../../src/host/sandbox.js';
import { unitFile } from '../../src/host/systemd.js';
import { installOptions } from '../support/host-fixtures.js';

/** What the generated unit hides from the guard, and the refusal to install under it. */

const install = (self: string[]) => installOptions({ backend: 'nftables', self });

const at = (given: string, resolved = given) => ({ given, resolved });

describe('the paths the unit hides', () => {
  it('are read from what the generated unit sets: ProtectHome and PrivateTmp', () => {
    const hidden = sandboxHiddenPaths(unitFile(install(['/usr/bin/imdsguard'])));
    expect(hidden).toEqual([
      { path: '/home', setting: 'ProtectHome=yes' },
      { path: '/root', setting: 'ProtectHome=yes' },
      { path: '/run/user', setting: 'ProtectHome=yes' },
      { path: '/tmp', setting: 'PrivateTmp=yes' },
      { path: '/var/tmp', setting: 'PrivateTmp=yes' },
    ]);
  });

  it('follow the settings: read-only home hides nothing, tmpfs does, the last value wins', () => {
    const unit = (body: string) => `[Unit]\nProtectHome=yes\n[Service]\n${body}\n[Install]\nPrivateTmp=yes\n`;
    expect(sandboxHiddenPaths(unit('ProtectHome=read-only'))).toEqual([]);
    expect(sandboxHiddenPaths(unit('ProtectHome=tmpfs')).map((h) => h.path)).toEqual([
      '/home',
      '/root',
      '/run/user',
    ]);
    expect(sandboxHiddenPaths(unit('PrivateTmp=yes\nPrivateTmp=no'))).toEqual([]);
    expect(sandboxHiddenPaths(unit('# ProtectHome=yes\nPrivateTmp=true')).map((h) => h.path)).toEqual([
      '/tmp',
      '/var/tmp',
    ]);
    expect(
      sandboxHiddenPaths(unit('InaccessiblePaths=-/opt/secret +/srv\nTemporaryFileSystem=/var/cache:ro')),
    ).toEqual([
      { path: '/opt/secret', setting: 'InaccessiblePaths=-/opt/secret +/srv' },
      { path: '/srv', setting: 'InaccessiblePaths=-/opt/secret +/srv' },
      { path: '/var/cache', setting: 'TemporaryFileSystem=/var/cache:ro' },
    ]);
  });
});

describe('refusing an installation the unit could not run', () => {
  const unit = unitFile(install(['/usr/bin/imdsguard']));
  const hidden = sandboxHiddenPaths(unit);

  it('matches whole path components, given or resolved', () => {
    expect(sandboxConflicts(hidden, [at('/root')])).toHaveLength(1);
    expect(sandboxConflicts(hidden, [at('/root/.nvm/versions/node/v22.12.0/bin/node')])).toHaveLength(1);
    expect(sandboxConflicts(hidden, [at('/rootfs/node'), at('/homebrew/bin/node'), at('/tmpx/a')])).toEqual(
      [],
    );
    expect(sandboxConflicts(hidden, [at('/run/user/1000/fnm/node')])).toHaveLength(1);
    expect(sandboxConflicts(hidden, [at('/var/tmp/imdsguard/main.js')])).toHaveLength(1);
    // a symlink in a system folder that resolves into a home directory
    const c = sandboxConflicts(hidden, [at('/usr/local/bin/node', '/home/ops/.volta/bin/node')]);
    expect(c.map((x) => x.hidden.path)).toEqual(['/home']);
    expect(sandboxConflicts(hidden, [at('/usr/bin/node', '/usr/lib/nodejs/node')])).toEqual([]);
  });

  it('throws IMDSGUARD_E_HOST_SANDBOX naming the path, the setting and the fix', () => {
    let err: unknown;
    try {
      assertUnitCanRun(unit, [
        at('/usr/bin/node'),
        at('/opt/imdsguard/node_modules', '/tmp/build/node_modules'),
      ]);
    } catch (e) {
      err = e;
    }
    expect(isImdsguardError(err, 'IMDSGUARD_E_HOST_SANDBOX')).toBe(true);
    const e = err as Error & { hint?: string };
    expect(e.message).toContain(
      '/opt/imdsguard/node_modules (resolves to /tmp/build/node_modules) is under /tmp, which PrivateTmp=yes hides',
    );
    expect(e.message).toContain('cutting IMDS off for the whole host');
    expect(e.hint).toContain('--bin');
    expect(() => assertUnitCanRun(unit, [at('/usr/bin/node'), at('/usr/lib/x/main.js')])).not.toThrow();
  });
});
