import { ImdsguardError } from '../errors.js';
import { type CommandRunner, mustRun } from './runner.js';
import { exists } from './state-io.js';
import type { ApplyReport, GuardUser } from './types.js';

/** The system parts install touches besides files and rules: the guard's user and systemd. */

/**
 * Looks a user up with getent (host NSS). A number that names no user is taken as a uid (and gid):
 * a container image need not list the uid the guard runs as. undefined when it does not exist.
 */
export async function lookupUser(
  runner: CommandRunner,
  name: string,
): Promise<{ uid: number; gid: number } | undefined> {
  const r = await runner.run(['getent', 'passwd', name]);
  if (r.code !== 0) {
    const id = /^\d{1,10}$/.test(name) ? Number(name) : Number.NaN;
    return id < 4_294_967_295 ? { uid: id, gid: id } : undefined;
  }
  const f = r.stdout.trim().split(':');
  if (f.length < 4) return undefined;
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/**
 * Resolves the guard user. An explicit --user must exist; the default user is created on --apply
 * (never with a --root prefix other than /: a package's postinst creates it there).
 */
export async function resolveGuardUser(
  runner: CommandRunner,
  name: string,
  explicit: boolean,
  apply: boolean,
  root: string,
  report: ApplyReport,
  useradd: readonly string[] | undefined,
): Promise<GuardUser & { created: boolean }> {
  const found = await lookupUser(runner, name);
  if (found) return { name, uid: found.uid, gid: found.gid, create: false, created: false };
  if (explicit) {
    throw new ImdsguardError('IMDSGUARD_E_HOST_USER', `user "${name}" does not exist`, {
      hint: 'pass an existing user with --user, or leave --user out to create the imdsguard system user',
    });
  }
  if (!apply) return { name, uid: undefined, gid: undefined, create: true, created: false };
  if (root !== '/' || !useradd) {
    throw new ImdsguardError(
      'IMDSGUARD_E_HOST_USER',
      `user "${name}" does not exist and install does not create users under --root ${root}`,
      { hint: 'create it in the package (useradd --system) or pass an existing --user' },
    );
  }
  await mustRun(runner, useradd);
  report.changes.push(`created system user ${name}`);
  const made = await lookupUser(runner, name);
  if (!made) throw new ImdsguardError('IMDSGUARD_E_HOST_USER', `user "${name}" was not created`);
  return { name, uid: made.uid, gid: made.gid, create: false, created: true };
}

/** True when systemd is the init system (the sd_booted() test). */
export async function systemdBooted(): Promise<boolean> {
  return exists('/run/systemd/system');
}

export async function runSystemd(
  runner: CommandRunner,
  commands: ReadonlyArray<{ argv: readonly string[] }>,
  root: string,
  report: ApplyReport,
): Promise<void> {
  if (commands.length === 0) return;
  if (root !== '/') {
    report.notes.push(`--root ${root}: not running systemctl (enable the unit on the target system)`);
    return;
  }
  if (!(await systemdBooted())) {
    report.notes.push('systemd is not PID 1: not running systemctl');
    return;
  }
  for (const c of commands) {
    await mustRun(runner, c.argv);
    report.changes.push(c.argv.join(' '));
  }
}
