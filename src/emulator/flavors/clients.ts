import type { Flavor } from '../../imds/flavors.js';

/**
 * How each cloud's own clients are pointed at an emulator on `url` (http://HOST:PORT): the
 * environment variables their SDKs read, or, where none exists, what to fetch. Printed by
 * `imdsguard emulate`; docs/emulator.md has the same table.
 */
export interface ClientHint {
  /** NAME=value pairs to export, in order. */
  env: Array<readonly [string, string]>;
  /** One line for people: what reads the variables, or what to do when there is none. */
  note: string;
}

export function clientHint(flavor: Flavor, url: string): ClientHint {
  const hostPort = url.replace(/^http:\/\//, '');
  switch (flavor) {
    case 'aws':
      return {
        env: [['AWS_EC2_METADATA_SERVICE_ENDPOINT', `${url}/`]],
        note: 'read by the AWS SDKs and the AWS CLI (the trailing slash matters)',
      };
    case 'gcp':
      return {
        env: [
          ['GCE_METADATA_HOST', hostPort],
          ['GCE_METADATA_IP', hostPort],
        ],
        note: 'read by the Google auth libraries (google-auth, gcp-metadata, cloud.google.com/go/compute/metadata)',
      };
    case 'azure':
      return {
        env: [['AZURE_POD_IDENTITY_AUTHORITY_HOST', url]],
        note: 'read by Azure Identity and MSAL for managed-identity tokens (/metadata/identity/oauth2/token)',
      };
    case 'oci':
      return {
        env: [['OCI_METADATA_BASE_URL', `${url}/opc/v2`]],
        note: 'read by the OCI SDKs for instance principals (send Authorization: Bearer Oracle yourself)',
      };
    case 'digitalocean':
      return {
        env: [],
        note: `DigitalOcean clients read 169.254.169.254 and have no endpoint variable: curl ${url}/metadata/v1.json`,
      };
    case 'alibaba':
      return {
        env: [],
        note: `Alibaba Cloud SDKs read 100.100.100.200 and have no endpoint variable: curl ${url}/latest/meta-data/`,
      };
  }
}
