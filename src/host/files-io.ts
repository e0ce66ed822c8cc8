import { chmod, chown, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FILE_MARK } from './files.js';
import { exists, type InstallState, mkdirs, readText, rooted, sha256 } from './state-io.js';
import { type ApplyReport, type FileSpec, PATHS } from './types.js';

/**
 * The files install writes, and their exact removal: a file goes only while it still holds what
 * install wrote.
 */

export async function writeFiles(
  root: string,
  files: readonly FileSpec[],
  gid: number | undefined,
  state: InstallState,
  report: ApplyReport,
): Promise<void> {
  for (const f of files) {
    const path = rooted(root, f.path);
    for (const d of await mkdirs(dirname(path))) {
      if (!state.createdDirs.includes(d)) state.createdDirs.push(d);
    }
    const current = await readText(path);
    const recorded = state.files.find((x) => x.path === f.path);
    if (current !== undefined && f.keepExisting) {
      // A file the user may have edited: never overwrite; still ours if we wrote it.
      if (!recorded) report.notes.push(`kept existing ${path}`);
      continue;
    }
    if (current !== f.content) {
      const tmp = `${path}.imdsguard-tmp`;
      await writeFile(tmp, f.content, { mode: f.mode });
      await rename(tmp, path);
      report.changes.push(`${current === undefined ? 'wrote' : 'updated'} ${path}`);
    }
    await chmod(path, f.mode);
    if (f.group === 'guard' && gid !== undefined) await chown(path, 0, gid).catch(() => undefined);
    const digest = sha256(f.content);
    if (recorded) recorded.sha256 = digest;
    else state.files.push({ path: f.path, sha256: digest });
  }
}

/**
 * Removes the files install wrote that still hold what it wrote (an edited file is kept and reported).
 * Without a record, only files that carry our header are removed.
 */
export async function removeFiles(
  root: string,
  state: InstallState | undefined,
  report: ApplyReport,
): Promise<void> {
  const known = state?.files ?? [
    { path: PATHS.unit, sha256: '' },
    { path: PATHS.interfacesUnit, sha256: '' },
    { path: PATHS.sysctl, sha256: '' },
    { path: PATHS.config, sha256: '' },
    { path: PATHS.env, sha256: '' },
  ];
  for (const f of known) {
    const path = rooted(root, f.path);
    const text = await readText(path);
    if (text === undefined) continue;
    const ours = f.sha256 ? sha256(text) === f.sha256 : text.startsWith(FILE_MARK);
    if (!ours) {
      report.notes.push(`kept ${path} (changed since install)`);
      continue;
    }
    await rm(path);
    report.changes.push(`removed ${path}`);
  }
}

/**
 * Puts back the route_localnet values an older install recorded in its state (for interfaces that
 * still exist). Installs now record them in PATHS.routeLocalnet (interfaces-io.ts).
 */
export async function restoreSysctl(state: InstallState | undefined, report: ApplyReport): Promise<void> {
  for (const s of state?.sysctl ?? []) {
    if (await exists(s.path)) {
      await writeFile(s.path, `${s.previous}\n`);
      report.changes.push(`restored ${s.path} = ${s.previous}`);
    }
  }
}
