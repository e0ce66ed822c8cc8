/**
 * The .deb: the executable as /usr/bin/imdsguard, the systemd unit `imdsguard install --systemd`
 * would write (from src/host/systemd.ts, with the executable as its command), the config and
 * environment files as conffiles, and maintainer scripts that create the imdsguard system user and
 * take the redirect out again on removal. Built with dpkg-deb; nothing is started on install.
 */
import {
  chmodSync,
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from './sea.js';

/** Where the package puts things (the unit in the vendor directory: a local unit in /etc wins). */
export const DEB_PATHS = {
  bin: '/usr/bin/imdsguard',
  unit: '/lib/systemd/system/imdsguard.service',
  doc: '/usr/share/doc/imdsguard',
};

/** Replaces install's "managed by imdsguard install" first line: dpkg, not uninstall, owns these. */
function packaged(text, mark) {
  const lines = text.split('\n');
  if (lines[0] !== mark) throw new Error(`generated file does not start with ${mark}`);
  lines[0] = '# Installed by the imdsguard package (dpkg owns this file; apt purge removes it).';
  return lines.join('\n');
}

/** The highest GLIBC_x.y symbol version the binary needs (read from its dynamic string table). */
function glibcNeeded(file) {
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  let best = [2, 17];
  try {
    const chunk = Buffer.alloc(16 * 1024 * 1024);
    for (let pos = 0; pos < size; pos += chunk.length - 32) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      for (const m of chunk
        .subarray(0, n)
        .toString('latin1')
        .matchAll(/GLIBC_2\.(\d+)\b/g)) {
        const v = [2, Number(m[1])];
        if (v[1] > best[1]) best = v;
      }
    }
  } finally {
    closeSync(fd);
  }
  return best.join('.');
}

function write(file, content, mode) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

/**
 * Builds `out` from the executable. `host` is dist/host (systemd.js, plan.js, types.js);
 * `compression` is dpkg-deb's -Z (gzip builds in seconds; xz is smaller and slower).
 */
export function buildDeb({ host, exe, debArch, version, notices, readme, out, work, compression }) {
  const { unitFile, configFile, envFile, FILE_MARK } = host.systemd;
  const { PATHS, DEFAULT_GUARD_PORT, DEFAULT_USER } = host.types;
  const { useraddCommand } = host.plan;
  const opts = {
    backend: 'nftables',
    hooksDetectBackend: true,
    port: DEFAULT_GUARD_PORT,
    ipv6: false,
    bridges: [],
    exempt: DEFAULT_USER,
    user: { name: DEFAULT_USER, uid: undefined, gid: undefined, create: true },
    root: '/',
    systemd: true,
    failMode: 'closed',
    self: [DEB_PATHS.bin],
    healthUrl: undefined,
  };
  const stage = join(work, `deb-${debArch}`);
  rmSync(stage, { recursive: true, force: true });
  const at = (p) => join(stage, p);

  mkdirSync(dirname(at(DEB_PATHS.bin)), { recursive: true });
  linkSync(exe, at(DEB_PATHS.bin));
  chmodSync(at(DEB_PATHS.bin), 0o755);
  write(at(DEB_PATHS.unit), unitFile(opts), 0o644);
  write(at(PATHS.config), packaged(configFile(opts), FILE_MARK), 0o640);
  write(at(PATHS.env), packaged(envFile(), FILE_MARK), 0o640);
  write(at(`${DEB_PATHS.doc}/copyright`), `${notices}\n`, 0o644);
  write(at(`${DEB_PATHS.doc}/README.md`), readme, 0o644);

  const useradd = useraddCommand(DEFAULT_USER).argv.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w}'`));
  write(
    at('DEBIAN/postinst'),
    `#!/bin/sh
set -e
if [ "$1" = configure ]; then
  # The user the guard runs as; its own traffic is the one exempt from the redirect.
  if ! getent passwd ${DEFAULT_USER} >/dev/null; then
    ${useradd.join(' ')}
  fi
  # Readable by the guard's group only: the env file may hold secrets (XHEADER, SLACK_TOKEN).
  chgrp ${DEFAULT_USER} ${PATHS.configDir} ${PATHS.config} ${PATHS.env}
  chmod 0750 ${PATHS.configDir}
  chmod 0640 ${PATHS.config} ${PATHS.env}
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    # An upgrade restarts a running guard onto the new executable; a first install starts nothing:
    # review ${PATHS.config}, then: systemctl enable --now imdsguard
    systemctl try-restart imdsguard.service || true
  fi
fi
exit 0
`,
    0o755,
  );
  write(
    at('DEBIAN/prerm'),
    `#!/bin/sh
set -e
case "$1" in
  remove|deconfigure)
    if [ -d /run/systemd/system ]; then
      systemctl disable --now imdsguard.service >/dev/null 2>&1 || true
    fi
    # The unit fails closed: its redirect stays when the guard stops. Take it out before the guard
    # goes, or every process but the guard's user would lose IMDS.
    ${DEB_PATHS.bin} uninstall --apply --rules-only || echo "imdsguard: could not remove the redirect rules; run: imdsguard uninstall --apply (from a kept copy) or remove the imdsguard iptables/nft rules" >&2
    ;;
esac
exit 0
`,
    0o755,
  );
  write(
    at('DEBIAN/postrm'),
    `#!/bin/sh
set -e
if [ "$1" = purge ]; then
  # The event store and the alert spool. The system user stays (Debian's practice for system users).
  rm -rf ${PATHS.stateDir}
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
exit 0
`,
    0o755,
  );
  write(at('DEBIAN/conffiles'), `${PATHS.config}\n${PATHS.env}\n`, 0o644);
  const installedKb = Math.ceil(
    [
      DEB_PATHS.bin,
      DEB_PATHS.unit,
      PATHS.config,
      PATHS.env,
      `${DEB_PATHS.doc}/copyright`,
      `${DEB_PATHS.doc}/README.md`,
    ]
      .map((p) => statSync(at(p)).size)
      .reduce((a, b) => a + b, 0) / 1024,
  );
  write(
    at('DEBIAN/control'),
    `Package: imdsguard
Version: ${version}
Architecture: ${debArch}
Maintainer: ${process.env.IMDSGUARD_DEB_MAINTAINER ?? 'imdsguard maintainers <maintainers@imdsguard.invalid>'}
Installed-Size: ${installedKb}
Depends: libc6 (>= ${glibcNeeded(exe)}), libstdc++6 (>= 5), libgcc-s1 | libgcc1, passwd
Recommends: nftables | iptables
Section: admin
Priority: optional
Homepage: https://github.com/imdsguard/imdsguard
Description: guard for the cloud instance metadata service (IMDS)
 A reverse proxy in front of 169.254.169.254 that knows which process is
 calling, allows IMDSv2 and named IMDSv1 callers, refuses the rest, and
 records and alerts on every request; plus the fleet CLI and an IMDS
 emulator. One executable (Node.js inside); the systemd unit is installed
 but not enabled: review /etc/imdsguard/config.yaml, then
 systemctl enable --now imdsguard.
`,
    0o644,
  );
  rmSync(out, { force: true });
  // gzip -6: within 10% of -9's size, at half its time.
  const level = compression === 'gzip' ? ['-z6'] : [];
  run('dpkg-deb', ['--root-owner-group', `-Z${compression}`, ...level, '--build', stage, out]);
  rmSync(stage, { recursive: true, force: true });
  return out;
}
