import { z } from 'zod';
import { DEFAULT_MAX_ENTRIES } from '../guard/tokens/ledger.js';

/** guard.tokenLedger: the bound of the token ledger (docs/guard.md, "The token ledger"). */
export const tokenLedgerSchema = z
  .object({
    /** Most tokens kept (read at start); past it, expired tokens go first, then the oldest issued. */
    maxEntries: z.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_ENTRIES),
  })
  .strict();
