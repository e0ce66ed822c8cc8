import { SERVER_HEADERS } from '../../imds/errors.js';
import type { InstanceModel } from '../instance.js';
import { type EmulatorState, type EmuRequest, type EmuResponse, hasHeader, header } from '../types.js';
import { fakeJwt, json, stableHex } from './common.js';
import { azurePlacement, machineType } from './placement.js';

/**
 * Azure IMDS: /metadata/instance, /metadata/identity/oauth2/token, /metadata/scheduledevents,
 * /metadata/attested/document, /metadata/versions. `Metadata: true` is required (400 without), the
 * api-version query parameter is mandatory (400 without or unknown), X-Forwarded-For is refused (400).
 * Leaves of the instance document need format=text.
 */

export const AZURE_API_VERSIONS = [
  '2017-03-01',
  '2017-04-02',
  '2017-08-01',
  '2017-12-01',
  '2018-02-01',
  '2018-04-02',
  '2018-10-01',
  '2019-02-01',
  '2019-03-11',
  '2019-04-30',
  '2019-06-01',
  '2019-06-04',
  '2019-08-01',
  '2019-08-15',
  '2019-11-01',
  '2020-06-01',
  '2020-07-15',
  '2020-09-01',
  '2020-10-01',
  '2020-12-01',
  '2021-01-01',
  '2021-02-01',
  '2021-03-01',
  '2021-05-01',
  '2021-10-01',
  '2021-11-01',
  '2021-11-15',
  '2021-12-13',
  '2023-07-01',
  '2023-11-15',
  '2024-03-15',
] as const;
const VERSIONS = new Set<string>(AZURE_API_VERSIONS);
const NEWEST = AZURE_API_VERSIONS.slice(-3).reverse();

function uuid(i: InstanceModel, label: string): string {
  const h = stableHex(i, label, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function azureInstanceDocument(i: InstanceModel): Record<string, unknown> {
  const subscriptionId = uuid(i, 'azure-subscription');
  const name = i.tags.find((t) => t.key === 'Name')?.value ?? i.instanceId;
  const [subnetAddress, subnetPrefix] = i.subnetCidr.split('/');
  const placement = azurePlacement(i);
  return {
    compute: {
      azEnvironment: 'AzurePublicCloud',
      location: placement.location,
      name,
      offer: 'debian-12',
      osType: 'Linux',
      publisher: 'Debian',
      resourceGroupName: 'imdsguard-rg',
      resourceId: `/subscriptions/${subscriptionId}/resourceGroups/imdsguard-rg/providers/Microsoft.Compute/virtualMachines/${name}`,
      sku: '12-gen2',
      subscriptionId,
      tags: i.tags.map((t) => `${t.key}:${t.value}`).join(';'),
      tagsList: i.tags.map((t) => ({ name: t.key, value: t.value })),
      userData: i.userData === null ? '' : Buffer.from(i.userData).toString('base64'),
      vmId: uuid(i, 'azure-vm'),
      vmSize: machineType('azure', i),
      zone: placement.zone,
    },
    network: {
      interface: [
        {
          ipv4: {
            ipAddress: [{ privateIpAddress: i.localIpv4, publicIpAddress: i.publicIpv4 ?? '' }],
            subnet: [{ address: subnetAddress ?? '', prefix: subnetPrefix ?? '' }],
          },
          ipv6: { ipAddress: [] },
          macAddress: i.mac.replace(/:/g, '').toUpperCase(),
        },
      ],
    },
  };
}

function badRequest(error: string, extra: Record<string, unknown> = {}): EmuResponse {
  return json(400, { error, ...extra });
}

export function createAzureHandler() {
  return (req: EmuRequest, state: EmulatorState): EmuResponse => {
    const res = handle(req, state);
    res.headers = { ...SERVER_HEADERS.azure, ...res.headers };
    return res;
  };

  function handle(req: EmuRequest, state: EmulatorState): EmuResponse {
    if (state.settings.endpoint === 'disabled')
      return json(403, { error: 'Forbidden. The metadata endpoint is disabled' });
    if (!req.path.startsWith('/metadata/')) return json(404, { error: 'Not found' });
    if (hasHeader(req, 'x-forwarded-for')) {
      return badRequest('Bad request. Requests containing an X-Forwarded-For header are not allowed');
    }
    if (header(req, 'metadata')?.toLowerCase() !== 'true') {
      return badRequest('Bad request. Required metadata header not specified');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'Method not allowed' });
    if (req.path === '/metadata/versions') return json(200, { apiVersions: AZURE_API_VERSIONS });
    const apiVersion = req.query.get('api-version');
    if (apiVersion === null || apiVersion === '') {
      return badRequest(
        'Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds',
        { 'newest-versions': NEWEST },
      );
    }
    if (!VERSIONS.has(apiVersion)) {
      return badRequest(
        'Bad request. api-version is invalid. For more information refer to aka.ms/azureimds',
        {
          'newest-versions': NEWEST,
        },
      );
    }
    const i = state.instance;
    const segs = req.path.split('/').filter((s) => s !== '');
    switch (segs[1]) {
      case 'instance':
        return instancePath(azureInstanceDocument(i), segs.slice(2), req.query.get('format'));
      case 'identity':
        if (segs.length === 4 && segs[2] === 'oauth2' && segs[3] === 'token')
          return identityToken(req, state);
        return json(404, { error: 'Not found' });
      case 'scheduledevents':
        if (segs.length !== 2) return json(404, { error: 'Not found' });
        return json(200, { DocumentIncarnation: 0, Events: [] });
      case 'attested':
        if (segs.length !== 3 || segs[2] !== 'document') return json(404, { error: 'Not found' });
        return json(200, {
          encoding: 'pkcs7',
          signature: Buffer.from(`${i.instanceId}:${req.query.get('nonce') ?? ''}`)
            .toString('base64')
            .padEnd(512, 'A'),
        });
      default:
        return json(404, { error: 'Not found' });
    }
  }

  function instancePath(doc: unknown, segs: string[], format: string | null): EmuResponse {
    let node: unknown = doc;
    for (const seg of segs) {
      if (Array.isArray(node) && /^\d+$/.test(seg)) node = node[Number(seg)];
      else if (
        node !== null &&
        typeof node === 'object' &&
        !Array.isArray(node) &&
        Object.hasOwn(node, seg)
      ) {
        node = (node as Record<string, unknown>)[seg];
      } else node = undefined;
      if (node === undefined) return json(404, { error: 'Not found' });
    }
    const leaf = node === null || typeof node !== 'object';
    if (format === 'text') {
      if (!leaf)
        return badRequest('Bad request. Query parameter format=text is only supported for leaf nodes');
      return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: String(node) };
    }
    if (format !== null && format !== 'json')
      return badRequest(`Bad request. Query parameter format=${format} is invalid`);
    if (leaf)
      return badRequest(
        'Bad request. Query parameter format=json is not supported for leaf nodes, use format=text',
      );
    return json(200, node);
  }

  function identityToken(req: EmuRequest, state: EmulatorState): EmuResponse {
    const resource = req.query.get('resource');
    if (resource === null || resource === '') {
      return json(400, {
        error: 'invalid_request',
        error_description: 'Required audience parameter not specified',
      });
    }
    if (state.instance.iam === null) {
      return json(400, { error: 'invalid_request', error_description: 'Identity not found' });
    }
    const now = Math.floor(state.now() / 1000);
    const clientId = uuid(state.instance, 'azure-identity');
    return json(200, {
      access_token: fakeJwt({ aud: resource, iat: now, nbf: now, exp: now + 86_399, appid: clientId }),
      client_id: clientId,
      expires_in: '86399',
      expires_on: String(now + 86_399),
      ext_expires_in: '86399',
      not_before: String(now),
      resource,
      token_type: 'Bearer',
    });
  }
}
