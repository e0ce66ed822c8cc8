import { ERROR_CODES, errorMessage, ImdsguardError } from '../errors.js';
import type { Output } from '../io/output.js';

/** Prints an error for a person and returns the exit code it maps to. */
export function reportError(err: unknown, stderr: Output, debug: boolean): number {
  if (err instanceof ImdsguardError) {
    // Commander has already printed usage errors with its "did you mean" suggestion.
    if (!err.details?.['printed']) stderr.write(`imdsguard: ${err.message} [${err.code}]\n`);
    else stderr.write(`[${err.code}]\n`);
    if (err.hint) stderr.write(`hint: ${err.hint}\n`);
    if (debug && err.cause) stderr.write(`cause: ${errorMessage(err.cause)}\n`);
    return err.exitCode;
  }
  stderr.write(`imdsguard: unexpected error: ${errorMessage(err)} [IMDSGUARD_E_INTERNAL]\n`);
  if (debug && err instanceof Error && err.stack) stderr.write(`${err.stack}\n`);
  return ERROR_CODES.IMDSGUARD_E_INTERNAL.exit;
}
