import type { Flavor } from '../../imds/flavors.js';
import { TokenIssuer } from '../tokens.js';
import type { FlavorHandler } from '../types.js';
import { createAlibabaHandler } from './alibaba.js';
import { createAwsHandler } from './aws.js';
import { createAzureHandler } from './azure.js';
import { createDigitalOceanHandler } from './digitalocean.js';
import { createGcpHandler } from './gcp.js';
import { createOciHandler } from './oci.js';

/** One handler per flavour; token-issuing flavours get their own signing key. */
export function createFlavorHandler(flavor: Flavor, now: () => number): FlavorHandler {
  switch (flavor) {
    case 'aws':
      return createAwsHandler(new TokenIssuer(now, 'aws'));
    case 'alibaba':
      return createAlibabaHandler(new TokenIssuer(now, 'alibaba'));
    case 'gcp':
      return createGcpHandler();
    case 'azure':
      return createAzureHandler();
    case 'digitalocean':
      return createDigitalOceanHandler();
    case 'oci':
      return createOciHandler();
  }
}
