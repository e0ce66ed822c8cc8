/**
 * The .deb: the executable as /usr/bin/imdsguard, the systemd unit and config files of
 * src/host/package.ts (the generators of `imdsguard install --systemd`), the config and environment
 * files as conffiles, and maintainer scripts that create the imdsguard system user and
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
 * Builds `out` from the executable. `host` is dist/host (package.js, types.js);
 * `compression` is dpkg-deb's -Z (gzip builds in seconds; xz is smaller and slower).
 */
export function buildDeb({ host, exe, debArch, version, notices, readme, out, work, compression }) {
  const { PACKAGE_PATHS: DEB_PATHS, packageFiles, packageUseradd } = host.package;
  const { PATHS, DEFAULT_USER } = host.types;
  const stage = join(work, `deb-${debArch}`);
  rmSync(stage, { recursive: true, force: true });
  const at = (p) => join(stage, p);
  const files = packageFiles();

  mkdirSync(dirname(at(DEB_PATHS.bin)), { recursive: true });
  linkSync(exe, at(DEB_PATHS.bin));
  chmodSync(at(DEB_PATHS.bin), 0o755);
  for (const f of files) write(at(f.path), f.content, f.mode);
  write(at(`${DEB_PATHS.doc}/copyright`), `${notices}\n`, 0o644);
  write(at(`${DEB_PATHS.doc}/README.md`), readme, 0o644);

  const useradd = packageUseradd().map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w}'`));
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
  const conffiles = files.filter((f) => f.conffile).map((f) => f.path);
  write(at('DEBIAN/conffiles'), `${conffiles.join('\n')}\n`, 0o644);
  const installed = [
    DEB_PATHS.bin,
    ...files.map((f) => f.path),
    `${DEB_PATHS.doc}/copyright`,
    `${DEB_PATHS.doc}/README.md`,
  ];
  const installedKb = Math.ceil(installed.map((p) => statSync(at(p)).size).reduce((a, b) => a + b, 0) / 1024);
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
