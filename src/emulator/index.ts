import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ImdsguardError } from '../errors.js';
import { writeImdsAnswer } from '../imds/answer.js';
import { type Flavor, FORWARDING_HEADERS } from '../imds/flavors.js';
import type { ListenAddress } from '../net/listen.js';
import { CredentialRotator } from './credentials.js';
import { createFlavorHandler } from './flavors/index.js';
import { defaultInstance, formatIssue, type InstanceModel } from './instance.js';
import { RequestLog } from './request-log.js';
import { closeServer, createBoundedServer, listen, readBody, urlOf } from './server.js';
import type { EmulatorSettings, EmulatorState, EmuRequest, EmuResponse } from './types.js';

export {
  defaultInstance,
  formatIssuePath,
  type InstanceModel,
  loadInstanceFile,
  parseInstance,
} from './instance.js';
export { REQUEST_LOG_CAPACITY } from './request-log.js';
export { SERVER_LIMITS } from './server.js';
export type { EmulatorSettings } from './types.js';

export interface EmulatorOptions {
  /** Default 'aws'. */
  flavor?: Flavor;
  /** Defaults: tokens optional, endpoint enabled, hopLimit 1. */
  settings?: Partial<EmulatorSettings>;
  /** Default: defaultInstance(), a realistic instance with an IAM role. */
  instance?: InstanceModel;
  /** Default [{host:'127.0.0.1', port:0}]. Several allowed, IPv4 and IPv6. */
  listen?: ListenAddress[];
  /** Optional admin HTTP server (keep it on loopback) to read and change settings at runtime. */
  admin?: ListenAddress;
  /** Clock in ms since the epoch; injectable for token-expiry and rotation tests. */
  now?: () => number;
}

/** One served request. Never holds token values, credentials or bodies. */
export interface EmulatorRequestLog {
  time: number;
  method: string;
  /** Path without the query string. */
  path: string;
  status: number;
  /** A PUT to a token path (whatever its outcome). */
  tokenPut: boolean;
  /** The request carried a session-token header (valid or not). */
  withToken: boolean;
  userAgent?: string;
  /** The request carried X-Forwarded-For, Forwarded or X-Forwarded-Host (lets proxy tests assert none was added). */
  forwarded?: boolean;
}

export interface Emulator {
  /** Binds every listen address (and the admin one). Throws IMDSGUARD_E_LISTEN naming the address. */
  start(): Promise<void>;
  /** The addresses actually bound (after start). */
  readonly addresses: ListenAddress[];
  /** http://HOST:PORT of the first address. */
  readonly url: string;
  readonly adminUrl: string | undefined;
  readonly settings: Readonly<EmulatorSettings>;
  /** Validates and applies a settings change; throws IMDSGUARD_E_CONFIG for a bad value. */
  setSettings(patch: Partial<EmulatorSettings>): void;
  /** The last REQUEST_LOG_CAPACITY requests, oldest first. */
  readonly requests: readonly EmulatorRequestLog[];
  close(): Promise<void>;
}

export const DEFAULT_SETTINGS: Readonly<EmulatorSettings> = Object.freeze({
  tokens: 'optional',
  endpoint: 'enabled',
  hopLimit: 1,
});

const settingsPatchSchema = z
  .object({
    tokens: z.enum(['optional', 'required']),
    endpoint: z.enum(['enabled', 'disabled']),
    hopLimit: z.number().int().min(1).max(64),
  })
  .partial()
  .strict();

/** Validates a settings patch (from code or the admin endpoint). Throws IMDSGUARD_E_CONFIG. */
export function validateSettingsPatch(patch: unknown): Partial<EmulatorSettings> {
  const r = settingsPatchSchema.safeParse(patch, { reportInput: true });
  if (!r.success) {
    throw new ImdsguardError('IMDSGUARD_E_CONFIG', `emulator settings: ${formatIssue(r.error.issues[0]!)}`, {
      details: { problems: r.error.issues.map(formatIssue) },
    });
  }
  return r.data;
}

/** Paths whose PUT asks for a session token (AWS and Alibaba; any API version). */
const TOKEN_PUT_PATH = /\/api\/token\/?$/;
const TOKEN_HEADERS = ['x-aws-ec2-metadata-token', 'x-aliyun-ecs-metadata-token'];

export function createEmulator(options: EmulatorOptions = {}): Emulator {
  const flavor: Flavor = options.flavor ?? 'aws';
  const now = options.now ?? Date.now;
  const instance = options.instance ?? defaultInstance();
  let settings: Readonly<EmulatorSettings> = Object.freeze({
    ...DEFAULT_SETTINGS,
    ...validateSettingsPatch(options.settings ?? {}),
  });
  const credentials =
    instance.iam === null
      ? undefined
      : new CredentialRotator({
          now,
          lifetimeMs: instance.iam.credentialLifetimeSeconds * 1000,
          rotateAfterMs: instance.iam.rotateAfterSeconds * 1000,
        });
  const state: EmulatorState = {
    instance,
    get settings() {
      return settings;
    },
    now,
    credentials,
  };
  const handler = createFlavorHandler(flavor, now);
  const log = new RequestLog();
  const listenAddrs = options.listen?.length ? options.listen : [{ host: '127.0.0.1', port: 0 }];
  const servers: Server[] = [];
  let adminServer: Server | undefined;
  let bound: ListenAddress[] = [];
  let adminBound: ListenAddress | undefined;
  let started = false;

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://metadata.invalid');
    } catch {
      url = new URL('http://metadata.invalid/\u0000invalid');
    }
    let path = url.pathname;
    try {
      path = decodeURIComponent(path);
    } catch {
      // keep the raw path: it will not match anything and gets a 404
    }
    const ua = req.headers['user-agent'];
    const entry: EmulatorRequestLog = {
      time: now(),
      method,
      path: path.length > 512 ? `${path.slice(0, 512)}...` : path,
      status: 0,
      tokenPut: method === 'PUT' && TOKEN_PUT_PATH.test(path),
      withToken: TOKEN_HEADERS.some((h) => req.headers[h] !== undefined),
      forwarded: FORWARDING_HEADERS.some((h) => req.headers[h] !== undefined),
    };
    if (typeof ua === 'string') entry.userAgent = ua.slice(0, 256);

    const body = await readBody(req);
    let r: EmuResponse;
    if (body === undefined) {
      r = { status: 413, headers: { 'content-type': 'text/plain' }, body: 'request body too large\n' };
    } else {
      const emuReq: EmuRequest = { method, path, query: url.searchParams, headers: req.headers };
      try {
        r = handler(emuReq, state);
      } catch {
        r = { status: 500, headers: { 'content-type': 'text/plain' }, body: 'internal error\n' };
      }
    }
    entry.status = r.status;
    log.push(entry);
    writeImdsAnswer(res, r);
  }

  function jsonReply(res: ServerResponse, status: number, value: unknown): void {
    writeImdsAnswer(res, {
      status,
      headers: { 'content-type': 'application/json' },
      body: `${JSON.stringify(value)}\n`,
    });
  }

  async function onAdmin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const body = await readBody(req, 4_096);
    if (body === undefined) return jsonReply(res, 413, { error: 'body larger than 4096 bytes' });
    const settingsView = () => ({ flavor, ...settings, hopLimitEnforced: false });
    switch (url.pathname) {
      case '/settings':
        if (method === 'GET') return jsonReply(res, 200, settingsView());
        if (method === 'PUT' || method === 'POST') {
          let patch: unknown;
          try {
            patch = JSON.parse(body.toString('utf8') || '{}');
          } catch {
            return jsonReply(res, 400, { error: 'body must be JSON such as {"tokens":"required"}' });
          }
          try {
            emulator.setSettings(patch as Partial<EmulatorSettings>);
          } catch (err) {
            return jsonReply(res, 400, { error: (err as Error).message });
          }
          return jsonReply(res, 200, settingsView());
        }
        return jsonReply(res, 405, { error: 'use GET, PUT or POST' });
      case '/requests':
        if (method === 'GET') return jsonReply(res, 200, { requests: log.entries() });
        if (method === 'DELETE') {
          log.clear();
          return jsonReply(res, 200, { requests: [] });
        }
        return jsonReply(res, 405, { error: 'use GET or DELETE' });
      case '/rotate':
        if (method !== 'POST') return jsonReply(res, 405, { error: 'use POST' });
        if (credentials === undefined) return jsonReply(res, 409, { error: 'the instance has no IAM role' });
        credentials.rotate();
        return jsonReply(res, 200, { rotated: true, credentialSets: credentials.count });
      default:
        return jsonReply(res, 404, {
          error: 'unknown admin path; see GET /settings, /requests, POST /rotate',
        });
    }
  }

  const emulator: Emulator = {
    async start() {
      if (started) throw new ImdsguardError('IMDSGUARD_E_INTERNAL', 'emulator already started');
      started = true;
      try {
        for (const addr of listenAddrs) {
          const s = createBoundedServer((req, res) => void onRequest(req, res));
          servers.push(s);
          bound.push(await listen(s, addr));
        }
        if (options.admin !== undefined) {
          adminServer = createBoundedServer((req, res) => void onAdmin(req, res));
          adminBound = await listen(adminServer, options.admin);
        }
      } catch (err) {
        await emulator.close();
        throw err;
      }
    },
    get addresses() {
      return [...bound];
    },
    get url() {
      const first = bound[0];
      if (first === undefined) throw new ImdsguardError('IMDSGUARD_E_INTERNAL', 'emulator not started');
      return urlOf(first);
    },
    get adminUrl() {
      return adminBound === undefined ? undefined : urlOf(adminBound);
    },
    get settings() {
      return settings;
    },
    setSettings(patch) {
      settings = Object.freeze({ ...settings, ...validateSettingsPatch(patch) });
    },
    get requests() {
      return log.entries();
    },
    async close() {
      const all = [...servers, ...(adminServer ? [adminServer] : [])];
      servers.length = 0;
      adminServer = undefined;
      await Promise.all(all.map(closeServer));
      bound = [];
      adminBound = undefined;
    },
  };
  return emulator;
}
