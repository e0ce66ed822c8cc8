/** EC2 query protocol handlers (Version 2016-11-15): form-encoded requests, XML in the EC2 namespace. */
import {
  decodeToken,
  ec2Filters,
  encodeToken,
  FakeAwsError,
  type HandlerContext,
  type HandlerResult,
  intParam,
  listParam,
} from './context.js';
import {
  emptyRegion,
  type FakeInstance,
  type FakeLaunchTemplate,
  type FakeRegion,
  type FakeTemplateData,
  type FakeTemplateMetadataOptions,
  type FakeTemplateVersion,
  latestVersionNumber,
  type OnOff,
  resolveTemplateVersion,
  type Tokens,
} from './model.js';
import { ec2List, leaf, node, XML_DECL } from './xml.js';

export const EC2_NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

type Ec2Handler = (ctx: HandlerContext, region: FakeRegion) => string;

function respond(ctx: HandlerContext, inner: string): HandlerResult {
  return {
    body: `${XML_DECL}<${ctx.action}Response xmlns="${EC2_NS}">${leaf('requestId', ctx.requestId)}${inner}</${ctx.action}Response>`,
    contentType: 'text/xml;charset=UTF-8',
  };
}

export function ec2ErrorBody(code: string, message: string, requestId: string): string {
  return `${XML_DECL}<Response><Errors><Error>${leaf('Code', code)}${leaf('Message', message)}</Error></Errors>${leaf('RequestID', requestId)}</Response>`;
}

/** The account's region; a region the account has no data in is served as empty. */
function regionOf(ctx: HandlerContext): FakeRegion {
  const account = ctx.fleet.accounts.get(ctx.accountId);
  if (!account)
    throw new FakeAwsError(
      'AuthFailure',
      'AWS was not able to validate the provided access credentials',
      401,
    );
  let region = account.regions.get(ctx.region);
  if (!region) {
    if (!ctx.fleet.regionNames.includes(ctx.region)) {
      throw new FakeAwsError('AuthFailure', `The region ${ctx.region} is not known`, 401);
    }
    region = emptyRegion(ctx.region);
    account.regions.set(ctx.region, region);
  }
  if (!region.enabled) {
    throw new FakeAwsError(
      'OptInRequired',
      'You are not subscribed to this service. Please go to http://aws.amazon.com to subscribe.',
      401,
    );
  }
  return region;
}

function dryRun(ctx: HandlerContext): void {
  if (ctx.params.get('DryRun') === 'true') {
    throw new FakeAwsError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
  }
}

function tagSet(tags: Record<string, string>): string {
  return ec2List(
    'tagSet',
    Object.entries(tags).map(([k, v]) => leaf('key', k) + leaf('value', v)),
  );
}

const STATE_CODES: Record<string, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/**
 * Moves a metadata change from pending to applied. EC2 API reference, ModifyInstanceMetadataOptions:
 * "When you modify the parameters on a stopped instance, they are applied when the instance is started.
 * When you modify the parameters on a running instance, the API responds with a state of pending. After
 * the parameter modifications are successfully applied to the instance, the state of the modifications
 * changes from pending to applied in subsequent describe-instances API calls." So a running instance's
 * change reads `pending` for `pendingForMs` (per instance, or the server option) and then `applied`; a
 * stopped one stays `pending` until a test starts it.
 */
function settle(ctx: HandlerContext, inst: FakeInstance): void {
  const m = inst.metadataOptions;
  if (m.state === 'pending' && inst.modifiedAt !== undefined && inst.state === 'running') {
    const delay = inst.pendingForMs ?? ctx.options.pendingForMs;
    if (ctx.now - inst.modifiedAt >= delay) m.state = 'applied';
  }
}

function metadataOptionsXml(tag: string, inst: FakeInstance): string {
  const m = inst.metadataOptions;
  return node(tag, [
    leaf('state', m.state),
    leaf('httpTokens', m.httpTokens),
    leaf('httpPutResponseHopLimit', m.httpPutResponseHopLimit),
    leaf('httpEndpoint', m.httpEndpoint),
    leaf('httpProtocolIpv6', m.httpProtocolIpv6),
    leaf('instanceMetadataTags', m.instanceMetadataTags),
  ]);
}

function instanceXml(ctx: HandlerContext, inst: FakeInstance): string {
  settle(ctx, inst);
  const profileId = inst.instanceProfileArn
    ? `AIPA${Buffer.from(inst.instanceProfileArn).toString('hex').slice(-16).toUpperCase()}`
    : undefined;
  return [
    leaf('instanceId', inst.instanceId),
    leaf('imageId', inst.imageId),
    node('instanceState', leaf('code', STATE_CODES[inst.state] ?? 16) + leaf('name', inst.state)),
    leaf('instanceType', inst.instanceType),
    leaf('launchTime', inst.launchTime),
    node('placement', leaf('availabilityZone', `${ctx.region}a`) + leaf('tenancy', 'default')),
    inst.instanceProfileArn
      ? node('iamInstanceProfile', leaf('arn', inst.instanceProfileArn) + leaf('id', profileId))
      : '',
    Object.keys(inst.tags).length > 0 ? tagSet(inst.tags) : '',
    metadataOptionsXml('metadataOptions', inst),
  ].join('');
}

const INSTANCE_FILTERS: Record<string, (inst: FakeInstance, values: string[]) => boolean> = {
  'instance-state-name': (i, v) => v.includes(i.state),
  'instance-id': (i, v) => v.includes(i.instanceId),
  'image-id': (i, v) => v.includes(i.imageId),
  'instance-type': (i, v) => v.includes(i.instanceType),
  'tag-key': (i, v) => v.some((k) => k in i.tags),
  'metadata-options.http-tokens': (i, v) => v.includes(i.metadataOptions.httpTokens),
  'metadata-options.http-endpoint': (i, v) => v.includes(i.metadataOptions.httpEndpoint),
  'metadata-options.http-put-response-hop-limit': (i, v) =>
    v.includes(String(i.metadataOptions.httpPutResponseHopLimit)),
  'metadata-options.instance-metadata-tags': (i, v) => v.includes(i.metadataOptions.instanceMetadataTags),
  'iam-instance-profile.arn': (i, v) =>
    i.instanceProfileArn !== undefined && v.includes(i.instanceProfileArn),
};

function instanceFilter(filters: Map<string, string[]>): (inst: FakeInstance) => boolean {
  const checks: Array<(inst: FakeInstance) => boolean> = [];
  for (const [name, values] of filters) {
    if (name.startsWith('tag:')) {
      const key = name.slice(4);
      checks.push((i) => i.tags[key] !== undefined && values.includes(i.tags[key] as string));
      continue;
    }
    const f = INSTANCE_FILTERS[name];
    if (!f) throw new FakeAwsError('InvalidParameterValue', `The filter '${name}' is invalid`);
    checks.push((i) => f(i, values));
  }
  return (inst) => checks.every((c) => c(inst));
}

const describeInstances: Ec2Handler = (ctx, region) => {
  const ids = listParam(ctx.params, 'InstanceId');
  const maxResults = intParam(ctx.params, 'MaxResults', 5, 1000);
  if (ids.length > 0 && maxResults !== undefined) {
    throw new FakeAwsError(
      'InvalidParameterCombination',
      'The parameter instancesSet cannot be used with the parameter maxResults',
    );
  }
  const filters = ec2Filters(ctx.params);
  const match = instanceFilter(filters);
  for (const id of ids) {
    if (!region.instances.has(id)) {
      throw new FakeAwsError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
  }
  const idSet = new Set(ids);
  // The flat list of (reservation, instance) in a stable order; pages may split a reservation.
  const flat: Array<{ reservationId: string; ownerId: string; inst: FakeInstance }> = [];
  for (const res of region.reservations) {
    for (const id of res.instanceIds) {
      const inst = region.instances.get(id);
      if (!inst || (idSet.size > 0 && !idSet.has(id)) || !match(inst)) continue;
      flat.push({ reservationId: res.reservationId, ownerId: res.ownerId, inst });
    }
  }
  const key = `${[...filters].map(([k, v]) => `${k}=${v.join(',')}`).join(';')}|${ids.join(',')}`;
  const start = decodeToken(ctx.params.get('NextToken'), key);
  const size = maxResults ?? flat.length;
  const page = flat.slice(start, start + size);
  const groups: Array<{ reservationId: string; ownerId: string; items: string[] }> = [];
  for (const row of page) {
    const last = groups[groups.length - 1];
    const xml = instanceXml(ctx, row.inst);
    if (last && last.reservationId === row.reservationId) last.items.push(xml);
    else groups.push({ reservationId: row.reservationId, ownerId: row.ownerId, items: [xml] });
  }
  const next = start + size < flat.length ? encodeToken(start + size, key) : undefined;
  return (
    ec2List(
      'reservationSet',
      groups.map(
        (g) =>
          leaf('reservationId', g.reservationId) +
          leaf('ownerId', g.ownerId) +
          ec2List('instancesSet', g.items),
      ),
    ) + leaf('nextToken', next)
  );
};

function describeRegions(ctx: HandlerContext): string {
  const names = listParam(ctx.params, 'RegionName');
  const all = ctx.params.get('AllRegions') === 'true';
  const account = ctx.fleet.accounts.get(ctx.accountId);
  const items: string[] = [];
  for (const name of ctx.fleet.regionNames) {
    if (names.length > 0 && !names.includes(name)) continue;
    const enabled =
      account?.regions.get(name)?.enabled !== false && !ctx.faults.isRegionDisabled(ctx.accountId, name);
    if (!enabled && !all) continue;
    items.push(
      leaf('regionName', name) +
        leaf('regionEndpoint', `ec2.${name}.amazonaws.com`) +
        leaf('optInStatus', enabled ? 'opt-in-not-required' : 'not-opted-in'),
    );
  }
  return ec2List('regionInfo', items);
}

function templateXml(t: FakeLaunchTemplate): string {
  return [
    leaf('launchTemplateId', t.launchTemplateId),
    leaf('launchTemplateName', t.launchTemplateName),
    leaf('createTime', t.createTime),
    leaf('createdBy', 'arn:aws:iam::000000000000:user/fake'),
    leaf('defaultVersionNumber', t.defaultVersion),
    leaf('latestVersionNumber', latestVersionNumber(t)),
  ].join('');
}

function templateMetadataXml(m: FakeTemplateMetadataOptions | undefined): string {
  if (!m) return '';
  return node('metadataOptions', [
    leaf('state', 'applied'),
    leaf('httpTokens', m.httpTokens),
    leaf('httpPutResponseHopLimit', m.httpPutResponseHopLimit),
    leaf('httpEndpoint', m.httpEndpoint),
    leaf('httpProtocolIpv6', m.httpProtocolIpv6),
    leaf('instanceMetadataTags', m.instanceMetadataTags),
  ]);
}

function versionXml(t: FakeLaunchTemplate, v: FakeTemplateVersion): string {
  const d = v.data;
  return [
    leaf('launchTemplateId', t.launchTemplateId),
    leaf('launchTemplateName', t.launchTemplateName),
    leaf('versionNumber', v.versionNumber),
    leaf('versionDescription', v.description),
    leaf('createTime', v.createTime),
    leaf('createdBy', 'arn:aws:iam::000000000000:user/fake'),
    leaf('defaultVersion', v.versionNumber === t.defaultVersion),
    node('launchTemplateData', [
      leaf('imageId', d.imageId),
      leaf('instanceType', d.instanceType),
      d.iamInstanceProfileArn ? node('iamInstanceProfile', leaf('arn', d.iamInstanceProfileArn)) : '',
      templateMetadataXml(d.metadataOptions),
    ]),
  ].join('');
}

function findTemplate(region: FakeRegion, id: string | null, name: string | null): FakeLaunchTemplate {
  const t = region.launchTemplates.find(
    (x) => (id !== null && x.launchTemplateId === id) || (id === null && x.launchTemplateName === name),
  );
  if (!t) {
    if (id !== null) {
      throw new FakeAwsError(
        'InvalidLaunchTemplateId.NotFound',
        `The specified launch template, with template ID ${id}, does not exist.`,
      );
    }
    throw new FakeAwsError(
      'InvalidLaunchTemplateName.NotFoundException',
      `The specified launch template, with template name ${name}, does not exist.`,
    );
  }
  return t;
}

const describeLaunchTemplates: Ec2Handler = (ctx, region) => {
  const ids = listParam(ctx.params, 'LaunchTemplateId');
  const names = listParam(ctx.params, 'LaunchTemplateName');
  const max = intParam(ctx.params, 'MaxResults', 1, 200) ?? 200;
  if ((ids.length > 0 || names.length > 0) && ctx.params.get('MaxResults') !== null) {
    throw new FakeAwsError(
      'InvalidParameterCombination',
      'MaxResults cannot be used with LaunchTemplateIds or LaunchTemplateNames',
    );
  }
  for (const id of ids) findTemplate(region, id, null);
  for (const n of names) findTemplate(region, null, n);
  const filters = ec2Filters(ctx.params);
  const nameFilter = filters.get('launch-template-name');
  const list = region.launchTemplates.filter(
    (t) =>
      (ids.length === 0 || ids.includes(t.launchTemplateId)) &&
      (names.length === 0 || names.includes(t.launchTemplateName)) &&
      (!nameFilter || nameFilter.includes(t.launchTemplateName)),
  );
  const key = `${ids.join(',')}|${names.join(',')}|${nameFilter?.join(',') ?? ''}`;
  const start = decodeToken(ctx.params.get('NextToken'), key);
  const page = list.slice(start, start + max);
  const next = start + max < list.length ? encodeToken(start + max, key) : undefined;
  return ec2List('launchTemplates', page.map(templateXml)) + leaf('nextToken', next);
};

const describeLaunchTemplateVersions: Ec2Handler = (ctx, region) => {
  const id = ctx.params.get('LaunchTemplateId');
  const name = ctx.params.get('LaunchTemplateName');
  const versions = listParam(ctx.params, 'LaunchTemplateVersion');
  const max = intParam(ctx.params, 'MaxResults', 1, 200) ?? 200;
  const minV = ctx.params.get('MinVersion');
  const maxV = ctx.params.get('MaxVersion');
  const rows: Array<{ t: FakeLaunchTemplate; v: FakeTemplateVersion }> = [];
  if (id === null && name === null) {
    // Without a template, only $Latest and $Default of every template can be asked for.
    if (versions.length === 0 || versions.some((v) => v !== '$Latest' && v !== '$Default')) {
      throw new FakeAwsError(
        'MissingParameter',
        'The request must contain the parameter launchTemplateId or launchTemplateName, unless only $Latest or $Default versions are requested',
      );
    }
    for (const t of region.launchTemplates) {
      const want = new Set<number>();
      for (const v of versions) {
        const r = resolveTemplateVersion(t, v);
        if (r) want.add(r.versionNumber);
      }
      for (const v of t.versions) if (want.has(v.versionNumber)) rows.push({ t, v });
    }
  } else {
    const t = findTemplate(region, id, name);
    let list = t.versions;
    if (versions.length > 0) {
      const want = new Set<number>();
      for (const v of versions) {
        const r = resolveTemplateVersion(t, v);
        if (!r) {
          throw new FakeAwsError(
            'InvalidLaunchTemplateId.VersionNotFound',
            `Could not find launch template version ${v}`,
          );
        }
        want.add(r.versionNumber);
      }
      list = list.filter((v) => want.has(v.versionNumber));
    }
    if (minV !== null) list = list.filter((v) => v.versionNumber >= Number(minV));
    if (maxV !== null) list = list.filter((v) => v.versionNumber <= Number(maxV));
    for (const v of list) rows.push({ t, v });
  }
  const key = `${id}|${name}|${versions.join(',')}|${minV}|${maxV}`;
  const start = decodeToken(ctx.params.get('NextToken'), key);
  const page = rows.slice(start, start + max);
  const next = start + max < rows.length ? encodeToken(start + max, key) : undefined;
  return (
    ec2List(
      'launchTemplateVersionSet',
      page.map((r) => versionXml(r.t, r.v)),
    ) + leaf('nextToken', next)
  );
};

const describeImages: Ec2Handler = (ctx, region) => {
  const ids = listParam(ctx.params, 'ImageId');
  const owners = listParam(ctx.params, 'Owner');
  const filters = ec2Filters(ctx.params);
  for (const id of ids) {
    if (!region.images.has(id))
      throw new FakeAwsError('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
  }
  for (const name of filters.keys()) {
    if (name !== 'image-id' && name !== 'owner-id')
      throw new FakeAwsError('InvalidParameterValue', `The filter '${name}' is invalid`);
  }
  const idFilter = filters.get('image-id');
  const ownerFilter = filters.get('owner-id');
  const list = [...region.images.values()].filter(
    (img) =>
      (ids.length === 0 || ids.includes(img.imageId)) &&
      (!idFilter || idFilter.includes(img.imageId)) &&
      (!ownerFilter || ownerFilter.includes(img.ownerId)) &&
      (owners.length === 0 ||
        owners.includes(img.ownerId) ||
        (owners.includes('self') && img.ownerId === ctx.accountId)),
  );
  const max = intParam(ctx.params, 'MaxResults', 5, 1000) ?? list.length;
  const key = `${ids.join(',')}|${idFilter?.join(',') ?? ''}|${owners.join(',')}`;
  const start = decodeToken(ctx.params.get('NextToken'), key);
  const page = list.slice(start, start + max);
  const next = start + max < list.length ? encodeToken(start + max, key) : undefined;
  return (
    ec2List(
      'imagesSet',
      page.map((img) =>
        [
          leaf('imageId', img.imageId),
          leaf('imageLocation', `${img.ownerId}/${img.name}`),
          leaf('imageState', 'available'),
          leaf('imageOwnerId', img.ownerId),
          leaf('creationDate', img.creationDate),
          leaf('isPublic', false),
          leaf('architecture', 'x86_64'),
          leaf('imageType', 'machine'),
          leaf('name', img.name),
          leaf('rootDeviceType', 'ebs'),
          leaf('virtualizationType', 'hvm'),
          leaf('imdsSupport', img.imdsSupport),
        ].join(''),
      ),
    ) + leaf('nextToken', next)
  );
};

/** GetInstanceMetadataDefaults: fields with no preference are absent; managedBy is always there. */
const getInstanceMetadataDefaults: Ec2Handler = (_ctx, region) => {
  const d = region.defaults;
  return node('accountLevel', [
    leaf('httpTokens', d.httpTokens),
    leaf('httpPutResponseHopLimit', d.httpPutResponseHopLimit),
    leaf('httpEndpoint', d.httpEndpoint),
    leaf('instanceMetadataTags', d.instanceMetadataTags),
    leaf('managedBy', d.managedBy ?? 'account'),
    leaf('managedExceptionMessage', d.managedExceptionMessage),
    leaf('httpTokensEnforced', d.httpTokensEnforced),
  ]);
};

/** The error a region whose IMDS settings an Organizations declarative policy manages answers. */
function declarativePolicyError(region: FakeRegion, what: string): FakeAwsError {
  return new FakeAwsError(
    'UnsupportedOperation',
    region.defaults.managedExceptionMessage ??
      `${what} is managed by a declarative policy and can't be modified by the account.`,
  );
}

function choice<T extends string>(ctx: HandlerContext, name: string, values: readonly T[]): T | undefined {
  const v = ctx.params.get(name);
  if (v === null) return undefined;
  if (!(values as readonly string[]).includes(v)) {
    throw new FakeAwsError(
      'InvalidParameterValue',
      `Value (${v}) for parameter ${name} is invalid. Allowed: ${values.join(', ')}`,
    );
  }
  return v as T;
}

/**
 * ModifyInstanceMetadataOptions, with what the EC2 API reference documents for a parameter that is not
 * sent (ModifyInstanceMetadataOptionsRequest):
 *   HttpPutResponseHopLimit  "If no parameter is specified, the existing state is maintained."
 *   HttpEndpoint             "If this parameter is not specified, the existing state is maintained."
 *   HttpTokens               NOT maintained: "Default: If the value of ImdsSupport for the AMI ... is
 *                            v2.0 and the account level default is set to no-preference, the default is
 *                            required. If ... v2.0, but the account level default is set to V1 or V2, the
 *                            default is optional." plus "Order of precedence for instance metadata
 *                            options" (EC2 user guide): the account default, then the AMI's
 *                            ImdsSupport, then optional (the older reference: "If the parameter is not
 *                            specified in the request, the default state is optional").
 *   HttpProtocolIpv6, InstanceMetadataTags  not documented for a modify; the fake takes their documented
 *                            launch defaults (InstanceMetadataOptionsRequest: "Default: disabled"), so a
 *                            client that counts on an omitted field staying as it was fails here.
 * Also: DryRun answers DryRunOperation (412) after validation; terminated -> IncorrectInstanceState;
 * unknown id -> InvalidInstanceID.NotFound; the answer reads State `pending` (see settle). Since
 * February 2026, a region with HttpTokensEnforced=enabled refuses HttpTokens=optional with
 * UnsupportedOperation (EC2 API changes 2026-02-24: enforcement "block[s] attempts to enable IMDSv1 on
 * existing IMDSv2-only instances"; docs/shared IMDS.md: "setting HttpTokens=optional on an existing
 * instance fails with UnsupportedOperation").
 */
const modifyInstanceMetadataOptions: Ec2Handler = (ctx, region) => {
  const id = ctx.params.get('InstanceId');
  if (id === null)
    throw new FakeAwsError('MissingParameter', 'The request must contain the parameter InstanceId');
  const tokens = choice<Tokens>(ctx, 'HttpTokens', ['optional', 'required']);
  const endpoint = choice<OnOff>(ctx, 'HttpEndpoint', ['enabled', 'disabled']);
  const ipv6 = choice<OnOff>(ctx, 'HttpProtocolIpv6', ['enabled', 'disabled']);
  const tags = choice<OnOff>(ctx, 'InstanceMetadataTags', ['enabled', 'disabled']);
  const hop = intParam(ctx.params, 'HttpPutResponseHopLimit', 1, 64);
  const inst = region.instances.get(id);
  if (!inst) throw new FakeAwsError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
  if (inst.state === 'terminated' || inst.state === 'shutting-down') {
    throw new FakeAwsError(
      'IncorrectInstanceState',
      `The instance '${id}' is not in a state from which it can be modified.`,
    );
  }
  const m = inst.metadataOptions;
  const image = region.images.get(inst.imageId);
  const newTokens: Tokens =
    tokens ?? region.defaults.httpTokens ?? (image?.imdsSupport === 'v2.0' ? 'required' : 'optional');
  if (newTokens === 'optional' && region.defaults.httpTokensEnforced === 'enabled') {
    throw new FakeAwsError(
      'UnsupportedOperation',
      region.defaults.managedExceptionMessage ??
        'IMDSv2 is enforced in this Region (HttpTokensEnforced=enabled): HttpTokens=optional is not allowed.',
    );
  }
  dryRun(ctx);
  m.httpTokens = newTokens;
  if (endpoint !== undefined) m.httpEndpoint = endpoint;
  if (hop !== undefined) m.httpPutResponseHopLimit = hop;
  m.httpProtocolIpv6 = ipv6 ?? 'disabled';
  m.instanceMetadataTags = tags ?? 'disabled';
  m.state = 'pending';
  inst.modifiedAt = ctx.now;
  return leaf('instanceId', id) + metadataOptionsXml('instanceMetadataOptions', inst);
};

/** Reads LaunchTemplateData.* parameters (only the fields the fake models). */
function templateDataParams(ctx: HandlerContext): Partial<FakeTemplateData> {
  const p = ctx.params;
  const out: Partial<FakeTemplateData> = {};
  if (p.get('LaunchTemplateData.ImageId') !== null)
    out.imageId = p.get('LaunchTemplateData.ImageId') as string;
  if (p.get('LaunchTemplateData.InstanceType') !== null)
    out.instanceType = p.get('LaunchTemplateData.InstanceType') as string;
  if (p.get('LaunchTemplateData.IamInstanceProfile.Arn') !== null) {
    out.iamInstanceProfileArn = p.get('LaunchTemplateData.IamInstanceProfile.Arn') as string;
  }
  const prefix = 'LaunchTemplateData.MetadataOptions.';
  if ([...p.keys()].some((k) => k.startsWith(prefix))) {
    const m: FakeTemplateMetadataOptions = {};
    const tokens = choice<Tokens>(ctx, `${prefix}HttpTokens`, ['optional', 'required']);
    if (tokens) m.httpTokens = tokens;
    const endpoint = choice<OnOff>(ctx, `${prefix}HttpEndpoint`, ['enabled', 'disabled']);
    if (endpoint) m.httpEndpoint = endpoint;
    const ipv6 = choice<OnOff>(ctx, `${prefix}HttpProtocolIpv6`, ['enabled', 'disabled']);
    if (ipv6) m.httpProtocolIpv6 = ipv6;
    const tags = choice<OnOff>(ctx, `${prefix}InstanceMetadataTags`, ['enabled', 'disabled']);
    if (tags) m.instanceMetadataTags = tags;
    const hop = intParam(p, `${prefix}HttpPutResponseHopLimit`, 1, 64);
    if (hop !== undefined) m.httpPutResponseHopLimit = hop;
    out.metadataOptions = m;
  }
  return out;
}

const createLaunchTemplateVersion: Ec2Handler = (ctx, region) => {
  const t = findTemplate(region, ctx.params.get('LaunchTemplateId'), ctx.params.get('LaunchTemplateName'));
  const source = ctx.params.get('SourceVersion');
  let base: FakeTemplateData = {};
  if (source !== null) {
    const sv = resolveTemplateVersion(t, source);
    if (!sv)
      throw new FakeAwsError(
        'InvalidLaunchTemplateId.VersionNotFound',
        `Could not find launch template version ${source}`,
      );
    base = structuredClone(sv.data);
  }
  dryRun(ctx);
  // Like EC2: each top-level parameter given replaces the source's (MetadataOptions as a whole).
  const data: FakeTemplateData = { ...base, ...templateDataParams(ctx) };
  const v: FakeTemplateVersion = {
    versionNumber: latestVersionNumber(t) + 1,
    createTime: new Date(ctx.now),
    description: ctx.params.get('VersionDescription') ?? undefined,
    data,
  };
  t.versions.push(v);
  return node('launchTemplateVersion', versionXml(t, v));
};

const modifyLaunchTemplate: Ec2Handler = (ctx, region) => {
  const t = findTemplate(region, ctx.params.get('LaunchTemplateId'), ctx.params.get('LaunchTemplateName'));
  const dv = ctx.params.get('SetDefaultVersion');
  let target: FakeTemplateVersion | undefined;
  if (dv !== null) {
    target = resolveTemplateVersion(t, dv);
    if (!target)
      throw new FakeAwsError(
        'InvalidLaunchTemplateId.VersionNotFound',
        `Could not find launch template version ${dv}`,
      );
  }
  dryRun(ctx);
  if (target) t.defaultVersion = target.versionNumber;
  return node('launchTemplate', templateXml(t));
};

/**
 * ModifyInstanceMetadataDefaults (EC2 API reference): `no-preference` (hop limit `-1`) clears a field;
 * a field not sent is left as it is; HttpTokensEnforced takes enabled | disabled | no-preference. A
 * region whose defaults a declarative policy manages cannot be changed from the account (EC2 user
 * guide: "When a declarative policy is in use, you can't modify the settings directly within an
 * account"); the error code for that is not documented: the fake answers UnsupportedOperation with the
 * policy's exception message.
 */
const modifyInstanceMetadataDefaults: Ec2Handler = (ctx, region) => {
  const tokens = choice(ctx, 'HttpTokens', ['optional', 'required', 'no-preference'] as const);
  const endpoint = choice(ctx, 'HttpEndpoint', ['enabled', 'disabled', 'no-preference'] as const);
  const tags = choice(ctx, 'InstanceMetadataTags', ['enabled', 'disabled', 'no-preference'] as const);
  const enforced = choice(ctx, 'HttpTokensEnforced', ['enabled', 'disabled', 'no-preference'] as const);
  const hopRaw = ctx.params.get('HttpPutResponseHopLimit');
  const hop = hopRaw === '-1' ? -1 : intParam(ctx.params, 'HttpPutResponseHopLimit', 1, 64);
  if (region.defaults.managedBy === 'declarative-policy') {
    throw declarativePolicyError(region, 'The instance metadata defaults of this Region');
  }
  dryRun(ctx);
  const d = region.defaults;
  if (tokens !== undefined) d.httpTokens = tokens === 'no-preference' ? undefined : tokens;
  if (endpoint !== undefined) d.httpEndpoint = endpoint === 'no-preference' ? undefined : endpoint;
  if (tags !== undefined) d.instanceMetadataTags = tags === 'no-preference' ? undefined : tags;
  if (hop !== undefined) d.httpPutResponseHopLimit = hop === -1 ? undefined : hop;
  if (enforced !== undefined) d.httpTokensEnforced = enforced === 'no-preference' ? undefined : enforced;
  return leaf('return', true);
};

export const EC2_ACTIONS: Record<string, Ec2Handler> = {
  DescribeInstances: describeInstances,
  DescribeRegions: (ctx) => describeRegions(ctx),
  DescribeLaunchTemplates: describeLaunchTemplates,
  DescribeLaunchTemplateVersions: describeLaunchTemplateVersions,
  DescribeImages: describeImages,
  GetInstanceMetadataDefaults: getInstanceMetadataDefaults,
  ModifyInstanceMetadataOptions: modifyInstanceMetadataOptions,
  CreateLaunchTemplateVersion: createLaunchTemplateVersion,
  ModifyLaunchTemplate: modifyLaunchTemplate,
  ModifyInstanceMetadataDefaults: modifyInstanceMetadataDefaults,
};

export function handleEc2(ctx: HandlerContext): HandlerResult {
  const h = EC2_ACTIONS[ctx.action];
  if (!h)
    throw new FakeAwsError('InvalidAction', `The action ${ctx.action} is not valid for this web service.`);
  // DescribeRegions works from any region the caller can reach; everything else needs an enabled region.
  if (ctx.action === 'DescribeRegions') return respond(ctx, describeRegions(ctx));
  return respond(ctx, h(ctx, regionOf(ctx)));
}
