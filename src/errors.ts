/**
 * Stable error codes. Every error imdsguard raises on purpose is an ImdsguardError with one of these
 * codes. docs/errors.md lists every code; test/unit/errors-docs.test.ts keeps the two in sync.
 *
 * exit: the process exit code when this error ends a command (2 usage or configuration, 1 runtime).
 */
export const ERROR_CODES = {
  IMDSGUARD_E_USAGE: { exit: 2, summary: 'Unknown command or option, or a bad option value.' },
  IMDSGUARD_E_CONFIG: { exit: 2, summary: 'The configuration (file, flags or environment) is invalid.' },
  IMDSGUARD_E_CONFIG_READ: { exit: 2, summary: 'A configuration or input file cannot be read or parsed.' },
  IMDSGUARD_E_INSTANCE_FILE: { exit: 2, summary: 'The emulator instance file is invalid.' },
  IMDSGUARD_E_RULE: { exit: 2, summary: 'A policy rule cannot be compiled.' },
  IMDSGUARD_E_LISTEN: { exit: 1, summary: 'A server cannot listen on the requested address.' },
  IMDSGUARD_E_HOST_COMMAND: {
    exit: 1,
    summary: 'A host command (iptables, nft, useradd, systemctl) failed.',
  },
  IMDSGUARD_E_HOST_BACKEND: {
    exit: 1,
    summary: 'No usable firewall backend (iptables or nft) on this host.',
  },
  IMDSGUARD_E_HOST_USER: { exit: 2, summary: 'The guard user does not exist and cannot be created here.' },
  IMDSGUARD_E_HOST_SANDBOX: {
    exit: 2,
    summary: 'The installation lies under a path the systemd unit hides (ProtectHome, PrivateTmp).',
  },
  IMDSGUARD_E_GUARD_UNHEALTHY: {
    exit: 1,
    summary: 'The guard is not healthy, so install refuses to add the redirect.',
  },
  IMDSGUARD_E_STORE: {
    exit: 1,
    summary: 'The event store or the alert spool cannot be opened, read or written.',
  },
  IMDSGUARD_E_AWS: {
    exit: 1,
    summary: 'An AWS API call failed (the message names the account, region and call).',
  },
  IMDSGUARD_E_AWS_AUTH: { exit: 1, summary: 'AWS credentials are missing, invalid or expired.' },
  IMDSGUARD_E_AWS_ACCESS: {
    exit: 1,
    summary: 'AWS refused a call for lack of permission (AccessDenied, UnauthorizedOperation).',
  },
  IMDSGUARD_E_AWS_ASSUME_ROLE: { exit: 1, summary: 'A role in a target account cannot be assumed.' },
  IMDSGUARD_E_AWS_REGION: { exit: 1, summary: 'A region is disabled or not opted in for the account.' },
  IMDSGUARD_E_AWS_THROTTLED: { exit: 1, summary: 'AWS kept throttling a call after every retry.' },
  IMDSGUARD_E_AWS_UNSUPPORTED: {
    exit: 1,
    summary:
      'The endpoint does not support the call (InvalidAction, an HTML error page, an answer that is not AWS XML).',
  },
  IMDSGUARD_E_OUTPUT: { exit: 1, summary: 'The output file (--output) cannot be written.' },
  IMDSGUARD_E_INPUT_FILE: {
    exit: 2,
    summary: 'The instance list (--input-file CSV) is invalid; the message names the line.',
  },
  IMDSGUARD_E_JOURNAL: {
    exit: 1,
    summary: 'The change journal (--journal) cannot be opened, read or written.',
  },
  IMDSGUARD_E_CHANGE_SET: {
    exit: 2,
    summary: 'The change set to roll back does not exist or was already rolled back.',
  },
  IMDSGUARD_E_CHANGE_FAILED: {
    exit: 1,
    summary: 'A fleet change failed or read back different from the plan.',
  },
  IMDSGUARD_E_CHANGE_UNVERIFIED: {
    exit: 1,
    summary: 'A fleet change was accepted but could not be read back (or still reads pending).',
  },
  IMDSGUARD_E_CHANGE_BLOCKED: {
    exit: 1,
    summary: 'A planned change would be refused by AWS (account-level enforcement, a declarative policy).',
  },
  IMDSGUARD_E_HOST_EVIDENCE: {
    exit: 2,
    summary: 'A host evidence file (--host-evidence) cannot be read, parsed, or names no instance.',
  },
  IMDSGUARD_E_LOGS_QUERY: {
    exit: 1,
    summary:
      'A CloudWatch Logs Insights query of host evidence failed, was cancelled, timed out, or found no query slot.',
  },
  IMDSGUARD_E_INTERRUPTED: {
    exit: 1,
    summary: 'The command was stopped (SIGINT or SIGTERM) before it finished.',
  },
  IMDSGUARD_E_INTERNAL: { exit: 1, summary: 'An unexpected internal error (a bug): please report it.' },
} as const satisfies Record<string, { exit: 1 | 2; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ImdsguardErrorOptions {
  cause?: unknown;
  /** A short suggestion the user can act on, printed after the message. */
  hint?: string;
  /** Structured context (account, region, instance, path...). Never put secrets here. */
  details?: Record<string, unknown>;
}

export class ImdsguardError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ImdsguardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ImdsguardError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get exitCode(): 1 | 2 {
    return ERROR_CODES[this.code].exit;
  }
}

export function isImdsguardError(err: unknown, code?: ErrorCode): err is ImdsguardError {
  return err instanceof ImdsguardError && (code === undefined || err.code === code);
}

/** A one-line message for any thrown value, never including a stack. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
