import { gcpErrorPage, SERVER_HEADERS } from '../../imds/errors.js';
import type { InstanceModel } from '../instance.js';
import { isDir, listing, resolve, splitPath, type TreeDir } from '../tree.js';
import { type EmulatorState, type EmuRequest, type EmuResponse, hasHeader, header } from '../types.js';
import { fakeJwt, kebabToCamel, numericId, randomToken } from './common.js';
import { gcpPlacement, machineType } from './placement.js';

/**
 * GCP metadata server: /computeMetadata/v1/..., `Metadata-Flavor: Google` required (403 without),
 * X-Forwarded-For refused (403). Service-account OAuth tokens under
 * instance/service-accounts/SA/token, identity tokens under .../identity?audience=.
 */

function textRes(status: number, body: string): EmuResponse {
  return { status, headers: { 'content-type': 'application/text' }, body };
}

function htmlRes(status: number, message: string): EmuResponse {
  return {
    status,
    headers: { 'content-type': 'text/html; charset=UTF-8' },
    body: gcpErrorPage(status, message),
  };
}

export function gcpProject(i: InstanceModel): { id: string; number: string } {
  return { id: `emulated-${i.accountId}`, number: i.accountId };
}

function serviceAccountDir(
  email: string,
  i: InstanceModel,
  req: () => EmuRequest,
  nowMs: () => number,
): TreeDir {
  return {
    aliases: 'default',
    email,
    identity: () => {
      const audience = req().query.get('audience');
      if (audience === null || audience === '') throw new BadRequest('non-empty audience parameter required');
      const now = Math.floor(nowMs() / 1000);
      return fakeJwt({
        aud: audience,
        azp: numericId(i, 'gcp-sa', 21),
        exp: now + 3600,
        iat: now,
        iss: 'https://accounts.google.com',
        sub: numericId(i, 'gcp-sa', 21),
      });
    },
    scopes: 'https://www.googleapis.com/auth/cloud-platform',
    token: () => ({
      body: JSON.stringify({
        access_token: `ya29.c.${randomToken(180)}`,
        expires_in: 3599,
        token_type: 'Bearer',
      }),
      contentType: 'application/json',
    }),
  };
}

class BadRequest extends Error {}

function buildTree(i: InstanceModel, req: () => EmuRequest, nowMs: () => number): TreeDir {
  const project = gcpProject(i);
  const placement = gcpPlacement(i);
  const zone = `projects/${project.number}/zones/${placement.zone}`;
  const accounts: Record<string, TreeDir> = {};
  if (i.iam !== null) {
    const email = `${i.iam.role}@${project.id}.iam.gserviceaccount.com`;
    accounts['default'] = serviceAccountDir(email, i, req, nowMs);
    accounts[email] = serviceAccountDir(email, i, req, nowMs);
  }
  const attributes: Record<string, string> = {};
  if (i.userData !== null) attributes['startup-script'] = i.userData;
  const accessConfigs: TreeDir =
    i.publicIpv4 === undefined ? {} : { '0': { 'external-ip': i.publicIpv4, type: 'ONE_TO_ONE_NAT' } };
  return {
    instance: {
      attributes,
      'cpu-platform': 'Intel Cascade Lake',
      description: '',
      disks: {
        '0': { 'device-name': 'persistent-disk-0', index: '0', mode: 'READ_WRITE', type: 'PERSISTENT' },
      },
      hostname: `${i.hostname.split('.')[0]}.${placement.zone}.c.${project.id}.internal`,
      id: numericId(i, 'gcp-instance', 19),
      image: `projects/debian-cloud/global/images/debian-12-bookworm-v${i.launchTime.slice(0, 10).replace(/-/g, '')}`,
      'machine-type': `projects/${project.number}/machineTypes/${machineType('gcp', i)}`,
      name: i.tags.find((t) => t.key === 'Name')?.value ?? i.instanceId,
      'network-interfaces': {
        '0': {
          'access-configs': accessConfigs,
          gateway: i.localIpv4.replace(/\.\d+$/, '.1'),
          ip: i.localIpv4,
          mac: i.mac,
          mtu: '1460',
          network: `projects/${project.number}/networks/default`,
        },
      },
      'service-accounts': accounts,
      tags: JSON.stringify(i.tags.map((t) => t.key.toLowerCase())),
      zone,
    },
    project: { attributes: {}, 'numeric-project-id': project.number, 'project-id': project.id },
  };
}

/** The ?recursive=true view of a directory: static values only, keys in camelCase as GCP writes them. */
function recursiveJson(dir: TreeDir): unknown {
  const out: Record<string, unknown> = {};
  for (const [name, node] of Object.entries(dir)) {
    if (typeof node === 'function') continue;
    out[kebabToCamel(name)] = isDir(node) ? recursiveJson(node) : node;
  }
  return out;
}

export function createGcpHandler() {
  let current: EmuRequest | undefined;
  let cached: { instance: InstanceModel; tree: TreeDir } | undefined;

  return (req: EmuRequest, state: EmulatorState): EmuResponse => {
    const res = handle(req, state);
    res.headers = { ...SERVER_HEADERS.gcp, ...res.headers };
    return res;
  };

  function handle(req: EmuRequest, state: EmulatorState): EmuResponse {
    if (state.settings.endpoint === 'disabled') return htmlRes(403, 'The metadata server is disabled.');
    if (req.method !== 'GET' && req.method !== 'HEAD') return htmlRes(405, 'Method not allowed.');
    if (req.path === '/') return textRes(200, 'computeMetadata/\n');
    if (req.path === '/computeMetadata/' || req.path === '/computeMetadata') return textRes(200, 'v1/\n');
    if (!req.path.startsWith('/computeMetadata/v1/') && req.path !== '/computeMetadata/v1') {
      return htmlRes(404, 'The requested URL was not found on this server.');
    }
    if (hasHeader(req, 'x-forwarded-for')) {
      return htmlRes(403, 'Your client does not have permission: X-Forwarded-For is not allowed.');
    }
    if (header(req, 'metadata-flavor')?.toLowerCase() !== 'google') {
      return htmlRes(
        403,
        `Your client does not have permission to get URL <code>${escapeHtml(req.path)}</code> from this server. Missing Metadata-Flavor:Google header.`,
      );
    }
    if (cached === undefined || cached.instance !== state.instance) {
      cached = {
        instance: state.instance,
        tree: buildTree(state.instance, () => current as EmuRequest, state.now),
      };
    }
    current = req;
    let found: ReturnType<typeof resolve>;
    try {
      found = resolve(cached.tree, splitPath(req.path).slice(2));
    } catch (err) {
      if (err instanceof BadRequest) return htmlRes(400, err.message);
      throw err;
    } finally {
      current = undefined;
    }
    if (found === undefined) return htmlRes(404, 'The requested URL was not found on this server.');
    if (found.kind === 'dir') {
      if (req.query.get('recursive') === 'true') {
        return {
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(recursiveJson(found.dir)),
        };
      }
      // Without the trailing slash GCP redirects to the directory (301).
      if (!req.path.endsWith('/')) {
        return { status: 301, headers: { location: `${req.path}/`, 'content-type': 'text/html' }, body: '' };
      }
      return textRes(200, `${listing(found.dir)}\n`);
    }
    const v = found.value;
    if (typeof v === 'string') return textRes(200, v);
    return { status: 200, headers: { 'content-type': v.contentType }, body: v.body };
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
