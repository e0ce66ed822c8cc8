import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ImdsguardError } from '../errors.js';
import { alertsFromLegacyEnv } from './alerts.js';
import { problemText, unknownKeyText } from './messages.js';
import { configSchema, type ImdsguardConfig } from './schema.js';

/**
 * Loads the configuration once: defaults < file (YAML or JSON) < environment < flags. The result is
 * validated, normalized and deeply frozen. Every error names the path of the bad key and where the
 * value came from, e.g. `guard.rules[2].exe: must be an absolute path`.
 */

/** Command-line flags of `imdsguard guard` that map onto the config. */
export interface ConfigFlags {
  config?: string;
  listen?: string[];
  allowRemoteListen?: boolean;
  upstream?: string;
  mode?: string;
  flavor?: string;
  authSecret?: string;
  authHeader?: string;
  allowExe?: string[];
  allowUser?: string[];
  allowUa?: string[];
  requireV2?: boolean;
  events?: string;
  db?: string;
  admin?: string;
  alert?: string[];
}

export interface ConfigSources {
  env: Readonly<Record<string, string | undefined>>;
  flags?: ConfigFlags;
  cwd: string;
}

type Plain = Record<string, unknown>;

/** A layer of settings plus, for each dotted path it sets, where the value came from. */
interface Layer {
  data: Plain;
  origins: Map<string, string>;
}

function setPath(layer: Layer, path: string, value: unknown, origin: string): void {
  const keys = path.split('.');
  let obj = layer.data;
  for (const k of keys.slice(0, -1)) {
    if (typeof obj[k] !== 'object' || obj[k] === null) obj[k] = {};
    obj = obj[k] as Plain;
  }
  obj[keys[keys.length - 1] as string] = value;
  layer.origins.set(path, origin);
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Users given as digits are uids. */
function users(values: string[]): (string | number)[] {
  return values.map((u) => (/^\d+$/.test(u) ? Number(u) : u));
}

function bool(value: string, name: string): boolean {
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new ImdsguardError('IMDSGUARD_E_CONFIG', `${name}: expected true or false, got "${value}"`);
}

/** metatrapd's MODE values, and imdsguard's own. */
function aliasMode(value: string): string {
  const v = value.trim().toUpperCase();
  if (v === 'PROXY') return 'enforce';
  if (v === 'ALERT') return 'trap';
  return value.trim().toLowerCase();
}

/**
 * Environment layer. IMDSGUARD_* names win over the metatrapd / ec2-metadata-filter aliases.
 * The alert aliases (SLACK_WEBHOOK, SLACK_TOKEN, SLACK_CHANNEL, WEBHOOK, WEBHOOK_AUTH) are mapped by
 * the alerts section's own alertsFromLegacyEnv.
 */
export function envLayer(env: Readonly<Record<string, string | undefined>>): Layer {
  const layer: Layer = { data: {}, origins: new Map() };
  const get = (name: string) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const set = (path: string, value: unknown, name: string) =>
    setPath(layer, path, value, `environment ${name}`);
  // aliases first, IMDSGUARD_* overwrite them
  const mode = get('MODE');
  if (mode) set('guard.mode', aliasMode(mode), 'MODE');
  const xheader = get('XHEADER');
  if (xheader) set('guard.authSecret', xheader, 'XHEADER');
  const allowList = get('ALLOW_LIST');
  if (allowList) set('guard.allowExe', list(allowList), 'ALLOW_LIST');
  const coal = get('COALMINE');
  const coalPort = get('COALMINE_PORT') ?? get('PORT');
  if (coal || coalPort) {
    const host = coal ?? '127.0.0.1';
    const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    set(
      'guard.listen',
      [`${hostPart}:${coalPort ?? '16925'}`],
      coal ? 'COALMINE' : get('COALMINE_PORT') ? 'COALMINE_PORT' : 'PORT',
    );
  }
  // SLACK_WEBHOOK, SLACK_TOKEN, SLACK_CHANNEL, WEBHOOK, WEBHOOK_AUTH: the alert sinks' own mapping.
  const legacy = alertsFromLegacyEnv(env);
  if (legacy.sinks) set('alerts.sinks', legacy.sinks, 'SLACK_WEBHOOK/SLACK_TOKEN/SLACK_CHANNEL');
  if (legacy.webhooks) set('alerts.webhooks', legacy.webhooks, 'WEBHOOK');

  const map: Array<[string, string, (v: string, n: string) => unknown]> = [
    ['IMDSGUARD_MODE', 'guard.mode', (v) => aliasMode(v)],
    ['IMDSGUARD_FLAVOR', 'guard.flavor', (v) => v.trim()],
    ['IMDSGUARD_LISTEN', 'guard.listen', (v) => list(v)],
    ['IMDSGUARD_UPSTREAM', 'guard.upstream', (v) => v.trim()],
    ['IMDSGUARD_AUTH_SECRET', 'guard.authSecret', (v) => v],
    ['IMDSGUARD_AUTH_HEADER', 'guard.authHeader', (v) => v.trim()],
    ['IMDSGUARD_ALLOW_EXE', 'guard.allowExe', (v) => list(v)],
    ['IMDSGUARD_ALLOW_USER', 'guard.allowUser', (v) => users(list(v))],
    ['IMDSGUARD_ALLOW_UA', 'guard.allowUserAgents', (v) => list(v)],
    ['IMDSGUARD_REQUIRE_V2', 'guard.requireV2', (v, n) => bool(v, n)],
    ['IMDSGUARD_EVENTS', 'events.file', (v) => v],
    ['IMDSGUARD_DB', 'events.db', (v) => v],
    ['IMDSGUARD_ADMIN', 'admin.listen', (v) => v.trim()],
    ['IMDSGUARD_ALERT', 'alerts.webhooks', (v) => list(v).map((url) => ({ url }))],
  ];
  for (const [name, path, conv] of map) {
    const v = get(name);
    if (v !== undefined) set(path, conv(v, name), name);
  }
  return layer;
}

export function flagsLayer(flags: ConfigFlags): Layer {
  const layer: Layer = { data: {}, origins: new Map() };
  const set = (path: string, value: unknown, flag: string) => setPath(layer, path, value, `flag ${flag}`);
  if (flags.listen?.length) set('guard.listen', flags.listen, '--listen');
  if (flags.allowRemoteListen !== undefined)
    set('guard.allowRemoteListen', flags.allowRemoteListen, '--allow-remote-listen');
  if (flags.upstream !== undefined) set('guard.upstream', flags.upstream, '--upstream');
  if (flags.mode !== undefined) set('guard.mode', flags.mode, '--mode');
  if (flags.flavor !== undefined) set('guard.flavor', flags.flavor, '--flavor');
  if (flags.authSecret !== undefined) set('guard.authSecret', flags.authSecret, '--auth-secret');
  if (flags.authHeader !== undefined) set('guard.authHeader', flags.authHeader, '--auth-header');
  if (flags.allowExe !== undefined) set('guard.allowExe', flags.allowExe, '--allow-exe');
  if (flags.allowUser !== undefined) set('guard.allowUser', users(flags.allowUser), '--allow-user');
  if (flags.allowUa !== undefined) set('guard.allowUserAgents', flags.allowUa, '--allow-ua');
  if (flags.requireV2 !== undefined) set('guard.requireV2', flags.requireV2, '--require-v2');
  if (flags.events !== undefined) set('events.file', flags.events, '--events');
  if (flags.db !== undefined) set('events.db', flags.db, '--db');
  if (flags.admin !== undefined) set('admin.listen', flags.admin, '--admin');
  if (flags.alert?.length)
    set(
      'alerts.webhooks',
      flags.alert.map((url) => ({ url })),
      '--alert',
    );
  return layer;
}

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects merge, everything else (arrays included) replaces. */
function merge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlain(b) && isPlain(v) ? merge(b, v) : v;
  }
  return out;
}

/** Reads a YAML or JSON config file (JSON is YAML). */
export function readConfigFile(file: string, cwd: string): Plain {
  const path = isAbsolute(file) ? file : resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ImdsguardError(
      'IMDSGUARD_E_CONFIG_READ',
      `cannot read config file ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  let data: unknown;
  try {
    data = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    throw new ImdsguardError(
      'IMDSGUARD_E_CONFIG_READ',
      `cannot parse config file ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (data === null || data === undefined) return {};
  if (!isPlain(data)) {
    throw new ImdsguardError(
      'IMDSGUARD_E_CONFIG_READ',
      `config file ${path}: the top level must be a mapping`,
    );
  }
  return data;
}

/** Formats a zod path as `guard.rules[2].exe`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(top level)' : out;
}

function originOf(path: string, origins: ReadonlyMap<string, string>): string | undefined {
  let best: string | undefined;
  let bestLen = -1;
  for (const [p, o] of origins) {
    if ((path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`)) && p.length > bestLen) {
      best = o;
      bestLen = p.length;
    }
  }
  return best;
}

function issueLines(
  issues: readonly z.core.$ZodIssue[],
  raw: unknown,
  origins: ReadonlyMap<string, string>,
  fileLabel?: string,
): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const p = formatPath([...issue.path, key]);
        lines.push(
          `${p}: ${unknownKeyText(configSchema, issue.path, key)}${fileLabel ? ` (in ${fileLabel})` : ''}`,
        );
      }
      continue;
    }
    const p = formatPath(issue.path);
    const origin = originOf(p, origins) ?? fileLabel;
    lines.push(`${p}: ${problemText(issue, raw)}${origin ? ` (from ${origin})` : ''}`);
  }
  return lines;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Validates raw settings (already merged) into the frozen config. */
export function parseConfig(
  raw: unknown,
  origins: ReadonlyMap<string, string> = new Map(),
  fileLabel?: string,
): ImdsguardConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = issueLines(result.error.issues, raw, origins, fileLabel);
    throw new ImdsguardError(
      'IMDSGUARD_E_CONFIG',
      lines.length === 1
        ? `invalid configuration: ${lines[0]}`
        : `invalid configuration:\n  ${lines.join('\n  ')}`,
      { hint: 'see docs/config.md for every key', details: { problems: lines } },
    );
  }
  return deepFreeze(result.data);
}

/**
 * Where each setting that is not a default came from, by `section.key` path: "config file PATH",
 * "environment NAME" (IMDSGUARD_* or a legacy name such as PORT or MODE) or "flag --NAME". A later
 * layer wins, as it does for the value.
 */
export type SettingOrigins = ReadonlyMap<string, string>;

/** The `section.key` paths a config file sets (a section's own path when it is not a mapping). */
function fileOrigins(fileData: Plain, label: string): Map<string, string> {
  const origins = new Map<string, string>();
  for (const [section, value] of Object.entries(fileData)) {
    if (isPlain(value)) for (const key of Object.keys(value)) origins.set(`${section}.${key}`, label);
    else origins.set(section, label);
  }
  return origins;
}

/** Loads file + environment + flags into one validated, frozen config. */
export function loadConfig(sources: ConfigSources): ImdsguardConfig {
  return loadConfigWithOrigins(sources).config;
}

/** loadConfig, and where each setting came from (the guard's start-up line names them). */
export function loadConfigWithOrigins(sources: ConfigSources): {
  config: ImdsguardConfig;
  origins: SettingOrigins;
} {
  const flags = sources.flags ?? {};
  const file = flags.config ?? sources.env['IMDSGUARD_CONFIG'];
  const fileData = file ? readConfigFile(file, sources.cwd) : {};
  const env = envLayer(sources.env);
  const fl = flagsLayer(flags);
  let merged = merge(fileData, env.data);
  // --alert adds webhooks to those already configured.
  const fileWebhooks = (fileData['alerts'] as Plain | undefined)?.['webhooks'];
  merged = merge(merged, fl.data);
  if (flags.alert?.length && Array.isArray(fileWebhooks)) {
    (merged['alerts'] as Plain)['webhooks'] = [...fileWebhooks, ...flags.alert.map((url) => ({ url }))];
  }
  const origins = new Map([...env.origins, ...fl.origins]);
  const label = file ? `config file ${file}` : undefined;
  const config = parseConfig(merged, origins, label);
  const all = new Map([...(label ? fileOrigins(fileData, label) : []), ...origins]);
  return { config, origins: all };
}
