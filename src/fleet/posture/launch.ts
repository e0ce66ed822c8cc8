/**
 * PURE: what a launch from a launch template version or a launch configuration gets, given the
 * region's account defaults and the AMI, and whether AWS refuses it.
 *
 * Precedence (EC2 user guide, "Order of precedence for instance metadata options"): the launch
 * parameters, then the account default, then the AMI's ImdsSupport (v2.0 means required), then EC2's
 * default (optional). With account-level enforcement (HttpTokensEnforced=enabled, since February
 * 2026), a launch that is not HttpTokens=required is refused; a launch that sets nothing, in a region
 * whose default does not say optional, gets required (it is compliant).
 */
import type {
  AccountDefaultsRecord,
  AutoScalingGroupRecord,
  HttpTokens,
  LaunchMetadataOptions,
  RegionScan,
  Toggle,
} from '../inventory/model.js';

export interface LaunchOutcome {
  tokens: HttpTokens;
  endpoint: Toggle;
  /** Where `tokens` comes from, for people: "launch settings", "account default", ... */
  source: string;
  /** HttpTokensEnforced is on and the launch is not HttpTokens=required: AWS refuses it. */
  refused: boolean;
  /** The launch would allow IMDSv1 (tokens optional, endpoint enabled) and is not refused. */
  allowsV1: boolean;
}

/** The HttpTokens a launch gets (see the precedence above). */
export function effectiveLaunchTokens(
  options: Pick<LaunchMetadataOptions, 'httpTokens'> | null,
  defaults: AccountDefaultsRecord | null,
  imageImdsSupport: 'v2.0' | null | 'unknown',
): HttpTokens {
  return launchTokens(options, defaults, imageImdsSupport).tokens;
}

function launchTokens(
  options: Pick<LaunchMetadataOptions, 'httpTokens'> | null,
  defaults: AccountDefaultsRecord | null,
  support: 'v2.0' | null | 'unknown',
): { tokens: HttpTokens; source: string } {
  if (options?.httpTokens) return { tokens: options.httpTokens, source: 'launch settings' };
  if (defaults?.httpTokens) return { tokens: defaults.httpTokens, source: 'account default' };
  if (support === 'v2.0') return { tokens: 'required', source: 'AMI ImdsSupport' };
  if (defaults?.httpTokensEnforced === 'enabled')
    return { tokens: 'required', source: 'account enforcement' };
  return {
    tokens: 'optional',
    source:
      defaults === null
        ? 'EC2 default (optional; the account defaults were not read)'
        : 'EC2 default (optional)',
  };
}

export function effectiveLaunchEndpoint(
  options: Pick<LaunchMetadataOptions, 'httpEndpoint'> | null,
  defaults: AccountDefaultsRecord | null,
): Toggle {
  return options?.httpEndpoint ?? defaults?.httpEndpoint ?? 'enabled';
}

/** A launch with these options in a region with these defaults, from this AMI. */
export function launchOutcome(
  options: Pick<LaunchMetadataOptions, 'httpTokens' | 'httpEndpoint'> | null,
  defaults: AccountDefaultsRecord | null,
  support: 'v2.0' | null | 'unknown',
): LaunchOutcome {
  const { tokens, source } = launchTokens(options, defaults, support);
  const endpoint = effectiveLaunchEndpoint(options, defaults);
  const refused = defaults?.httpTokensEnforced === 'enabled' && tokens !== 'required';
  return {
    tokens,
    endpoint,
    source,
    refused,
    allowsV1: !refused && tokens === 'optional' && endpoint !== 'disabled',
  };
}

/** The AMI support of an image id in a scan: 'v2.0', null (unset), or 'unknown' (not described). */
export function imageSupport(
  scan: Pick<RegionScan, 'images'>,
  imageId: string | null,
): 'v2.0' | null | 'unknown' {
  if (!imageId) return null;
  const img = scan.images.find((x) => x.imageId === imageId);
  return img ? img.imdsSupport : 'unknown';
}

/** launchOutcome for a launch from `options` and `imageId` in this scan's region. */
export function launchIn(
  scan: Pick<RegionScan, 'images' | 'defaults'>,
  options: Pick<LaunchMetadataOptions, 'httpTokens' | 'httpEndpoint'> | null,
  imageId: string | null,
): LaunchOutcome {
  return launchOutcome(options, scan.defaults, imageSupport(scan, imageId));
}

/** What an Auto Scaling group launches from: a template version or a launch configuration. */
export interface GroupLaunch {
  /** For people: "launch template web version 3 ($Default)", "launch configuration lc-1". */
  what: string;
  options: Pick<LaunchMetadataOptions, 'httpTokens' | 'httpEndpoint'> | null;
  imageId: string | null;
}

/** The version or configuration a group launches from, when the scan holds it (else null). */
export function groupLaunch(
  scan: Pick<RegionScan, 'launchTemplates' | 'launchConfigurations'>,
  g: AutoScalingGroupRecord,
): GroupLaunch | null {
  if (g.launchTemplate) {
    const ref = g.launchTemplate;
    const t = scan.launchTemplates.find(
      (x) =>
        (ref.launchTemplateId && x.launchTemplateId === ref.launchTemplateId) ||
        (!ref.launchTemplateId && x.launchTemplateName === ref.launchTemplateName),
    );
    if (!t) return null;
    const ver = ref.version;
    const n =
      ver === '$Latest' ? t.latestVersionNumber : ver === '$Default' ? t.defaultVersionNumber : Number(ver);
    const v = t.versions.find((x) => x.versionNumber === n);
    if (!v) return null;
    return {
      what: `launch template ${t.launchTemplateName} version ${n}${ver.startsWith('$') ? ` (${ver})` : ''}`,
      options: v.metadataOptions,
      imageId: v.imageId,
    };
  }
  if (g.launchConfigurationName) {
    const c = scan.launchConfigurations.find((x) => x.name === g.launchConfigurationName);
    if (!c) return null;
    return { what: `launch configuration ${c.name}`, options: c.metadataOptions, imageId: c.imageId };
  }
  return null;
}
