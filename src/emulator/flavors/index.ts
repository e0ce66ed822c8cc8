import { FLAVOR_SPECS, type Flavor } from '../../imds/flavors.js';
import { TokenIssuer } from '../tokens.js';
import type { FlavorHandler } from '../types.js';
import { createAwsHandler } from './aws.js';

/** One handler per flavour; each gets its own token key. */
export function createFlavorHandler(flavor: Flavor, now: () => number): FlavorHandler {
  switch (flavor) {
    case 'aws':
      return createAwsHandler(new TokenIssuer(now, 'aws'));
    default:
      throw new Error(`flavour ${FLAVOR_SPECS[flavor].flavor} is not emulated yet`);
  }
}
