import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import {
  parseBackend,
  parseChecks,
  parsePodInterfaces,
  parseSysctlRoot,
} from '../../src/cli/host-options.js';
import { parseConfig } from '../../src/config/index.js';
import { compilePolicy } from '../../src/guard/policy/index.js';
import { runInProcess } from '../support/cli.js';

/**
 * deploy/kubernetes without a cluster. Every object of the kustomize base and of the example overlay
 * is checked against the Kubernetes API schemas (the kubernetes-models package: its validators for
 * types, required fields, enums and formats, and its TypeScript types, compiled here, for field names:
 * a misspelt field is an excess property, as kubeconform -strict would report it). Then what the
 * schema cannot know: the privileges are exactly those docs/kubernetes.md explains, the commands are
 * ones the imdsguard CLI accepts, and the configuration is one the guard loads.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const K8S = join(ROOT, 'deploy/kubernetes');

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata?: { name?: string } };

const MODELS: Record<string, { check(o: Obj): void; type: string; from: string }> = {
  'v1/Namespace': {
    check: (o) => new Namespace(o as never).validate(),
    type: 'INamespace',
    from: 'kubernetes-models/v1/Namespace',
  },
  'v1/ServiceAccount': {
    check: (o) => new ServiceAccount(o as never).validate(),
    type: 'IServiceAccount',
    from: 'kubernetes-models/v1/ServiceAccount',
  },
  'v1/ConfigMap': {
    check: (o) => new ConfigMap(o as never).validate(),
    type: 'IConfigMap',
    from: 'kubernetes-models/v1/ConfigMap',
  },
  'apps/v1/DaemonSet': {
    check: (o) => new DaemonSet(o as never).validate(),
    type: 'IDaemonSet',
    from: 'kubernetes-models/apps/v1/DaemonSet',
  },
};

const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'resources', 'patches', 'images']);

function readYaml(path: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  for (const d of docs) if (d.errors.length > 0) throw new Error(`${path}: ${d.errors[0]?.message}`);
  return docs.map((d) => d.toJS() as Obj).filter((o) => o !== null);
}

function merge(base: unknown, patch: unknown): unknown {
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return patch;
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch)) out[k] = merge(out[k], v);
  return out;
}

const key = (o: Obj) =>
  `${o.apiVersion}/${o.kind}/${(o.metadata as { namespace?: string })?.namespace}/${o.metadata?.name}`;

/** The objects a kustomization builds: its resources (files or folders), then its patches merged in. */
function build(dir: string): Obj[] {
  const k = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Record<string, unknown>;
  for (const name of Object.keys(k)) {
    if (!KUSTOMIZATION_KEYS.has(name)) throw new Error(`${dir}/kustomization.yaml: unknown key ${name}`);
  }
  expect(k['kind']).toBe('Kustomization');
  let objects: Obj[] = [];
  for (const r of (k['resources'] as string[]) ?? []) {
    const p = resolve(dir, r);
    objects.push(...(existsSync(join(p, 'kustomization.yaml')) ? build(p) : readYaml(p)));
  }
  for (const patch of (k['patches'] as Array<{ path: string }>) ?? []) {
    for (const pobj of readYaml(resolve(dir, patch.path))) {
      const i = objects.findIndex((o) => key(o) === key(pobj));
      if (i < 0) throw new Error(`${dir}: patch ${patch.path} matches no object (${key(pobj)})`);
      objects = objects.map((o, j) => (j === i ? (merge(o, pobj) as Obj) : o));
    }
  }
  return objects;
}

/** TypeScript diagnostics of `const x: IKind = <object>` for each object (excess properties included). */
function typeCheck(objects: readonly Obj[]): string[] {
  const file = join(ROOT, 'test', 'unit', '__k8s_manifests__.ts');
  const lines: string[] = [];
  objects.forEach((o, i) => {
    const m = MODELS[`${o.apiVersion}/${o.kind}`];
    if (!m) return;
    lines.push(`import type { ${m.type} as T${i} } from '${m.from}';`);
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(o, null, 2)};`);
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    resolve(name) === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const sf = program.getSourceFile(file);
  return ts.getPreEmitDiagnostics(program, sf).map((d) => {
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    return `${where ? `line ${where.line + 1}: ` : ''}${text}`;
  });
}

function checkSchemas(objects: readonly Obj[]): void {
  for (const o of objects) {
    const m = MODELS[`${o.apiVersion}/${o.kind}`];
    expect(m, `no schema for ${o.apiVersion} ${o.kind}`).toBeDefined();
    m?.check(o);
  }
  expect(typeCheck(objects)).toEqual([]);
}

const base = build(join(K8S, 'base'));
const overlay = build(join(K8S, 'examples', 'allow-node-agent'));
const daemonSet = base.find((o) => o.kind === 'DaemonSet') as Obj;
const podSpec = (daemonSet as unknown as { spec: { template: { spec: Record<string, unknown> } } }).spec
  .template.spec;
interface Container {
  name: string;
  command: string[];
  securityContext: {
    runAsUser?: number;
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  readinessProbe?: { exec?: { command: string[] }; httpGet?: { port: number; path: string } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
const containers = [
  ...((podSpec['initContainers'] as Container[]) ?? []),
  ...(podSpec['containers'] as Container[]),
];
const container = (name: string) => containers.find((c) => c.name === name) as Container;
/** The arguments of imdsguard in a container: its command, or the exec line of its shell script. */
const argvOf = (c: Container): string[] => {
  if (c.command[0] !== 'sh') return c.command.slice(c.command.indexOf('imdsguard') + 1);
  const script = (c.command[2] ?? '').replace(/\\\n/g, ' ');
  const line = script.split('\n').find((l) => l.trim().startsWith('exec imdsguard')) ?? '';
  return line.trim().split(/\s+/).slice(2);
};
const flag = (argv: readonly string[], name: string) => argv[argv.indexOf(name) + 1] as string;

describe('deploy/kubernetes against the Kubernetes API schemas', () => {
  it('the base and the example overlay are valid objects, field names included', () => {
    expect(base.map((o) => o.kind)).toEqual(['Namespace', 'ServiceAccount', 'ConfigMap', 'DaemonSet']);
    checkSchemas(base);
    checkSchemas(overlay);
  }, 60_000);

  it('the check catches what kubeconform -strict would: a misspelt field, a wrong type, a bad enum', () => {
    const broken = structuredClone(daemonSet) as unknown as {
      spec: { template: { spec: Record<string, unknown> } };
    };
    broken.spec.template.spec['hostNetwrok'] = true;
    expect(typeCheck([broken as unknown as Obj]).join('\n')).toMatch(/hostNetwrok[^\n]*does not exist/);
    const wrongType = structuredClone(daemonSet) as unknown as { spec: Record<string, unknown> };
    wrongType.spec['minReadySeconds'] = 'ten';
    expect(() => MODELS['apps/v1/DaemonSet']?.check(wrongType as unknown as Obj)).toThrow(/minReadySeconds/);
    const badEnum = structuredClone(daemonSet) as unknown as { spec: { updateStrategy: { type: string } } };
    badEnum.spec.updateStrategy.type = 'Rolling';
    expect(() => MODELS['apps/v1/DaemonSet']?.check(badEnum as unknown as Obj)).toThrow(/allowed values/i);
    const noSelector = structuredClone(daemonSet) as unknown as { spec: Record<string, unknown> };
    delete noSelector.spec['selector'];
    expect(() => MODELS['apps/v1/DaemonSet']?.check(noSelector as unknown as Obj)).toThrow(/selector/);
  }, 60_000);
});

describe('deploy/kubernetes: what the schema cannot know', () => {
  it('runs on the node (hostNetwork, hostPID) with no API token and nothing privileged', () => {
    expect(podSpec['hostNetwork']).toBe(true);
    expect(podSpec['hostPID']).toBe(true);
    expect(podSpec['automountServiceAccountToken']).toBe(false);
    for (const c of containers) {
      expect(c.securityContext.privileged, c.name).toBeUndefined();
      expect(c.securityContext.allowPrivilegeEscalation, c.name).toBe(false);
      expect(c.securityContext.readOnlyRootFilesystem, c.name).toBe(true);
      expect(c.securityContext.capabilities?.drop, c.name).toEqual(['ALL']);
    }
  });

  it('gives each container exactly the capabilities docs/kubernetes.md explains', () => {
    const caps = Object.fromEntries(containers.map((c) => [c.name, c.securityContext.capabilities?.add]));
    expect(caps).toEqual({
      install: ['NET_ADMIN', 'CHOWN'],
      guard: ['DAC_READ_SEARCH', 'SYS_PTRACE', 'SETUID', 'SETGID'],
      interfaces: ['NET_ADMIN'],
    });
    // The guard keeps only the two attribution capabilities, as the uid the redirect exempts.
    const guard = container('guard').command;
    expect(guard.slice(0, 7)).toEqual([
      'setpriv',
      '--reuid=16925',
      '--regid=16925',
      '--clear-groups',
      '--inh-caps=+dac_read_search,+sys_ptrace',
      '--ambient-caps=+dac_read_search,+sys_ptrace',
      '--',
    ]);
    expect(flag(argvOf(container('install')), '--user')).toBe('16925');
    expect(flag(container('interfaces').readinessProbe?.exec?.command ?? [], '--user')).toBe('16925');
  });

  it('uses only options the imdsguard CLI has, with values it accepts', async () => {
    const install = argvOf(container('install'));
    const watch = argvOf(container('interfaces'));
    const probe = container('interfaces').readinessProbe?.exec?.command ?? [];
    for (const argv of [install, watch, probe.slice(1)]) {
      const help = await runInProcess([argv[0] as string, '--help']);
      for (const a of argv.filter((x) => x.startsWith('--'))) expect(help.stdout, a).toContain(a);
    }
    for (const argv of [install, watch, probe]) {
      expect(parsePodInterfaces(flag(watch, '--pod-interfaces'))).toEqual(['eni+', 'cali+', 'lxc+']);
      expect(parseBackend(flag(argv, '--backend'))).toBe('nftables');
      expect(parseSysctlRoot(flag(argv, '--sysctl-root'))).toBe('/host/proc/sys');
    }
    expect(flag(install, '--pod-interfaces')).toBe(flag(watch, '--pod-interfaces'));
    // The readiness probe asks no IMDSv1 question (imds-settings would count in MetadataNoToken).
    expect(parseChecks(flag(probe, '--checks'))).not.toContain('imds-settings');
    // The init container's install, in print mode, is a plan the CLI produces.
    const plan = await runInProcess(install.filter((a) => a !== '--apply'));
    expect(plan.stderr).toBe('');
    expect(plan.stdout).toContain('meta skuid != 16925 redirect to :16925');
    expect(plan.stdout).toContain(
      'iifname "eni*" ip daddr 169.254.169.254 tcp dport 80 dnat ip to 127.0.0.1:16925',
    );
  }, 60_000);

  it('mounts the host /proc/sys/net writable only where route_localnet is written', () => {
    for (const c of containers) {
      const m = c.volumeMounts?.find((v) => v.name === 'host-proc-sys-net');
      const writes = c.name === 'install' || c.name === 'interfaces';
      expect(m !== undefined, c.name).toBe(writes);
      if (m) expect(m.mountPath).toBe('/host/proc/sys/net');
    }
    const guardMounts = container('guard').volumeMounts ?? [];
    for (const m of guardMounts.filter((v) => v.name !== 'state')) expect(m.readOnly, m.name).toBe(true);
  });

  it('carries configurations the guard loads, on the ports the probes and the redirect use', () => {
    for (const objects of [base, overlay]) {
      const cm = objects.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
      const config = parseConfig(parseYaml(cm.data['config.yaml'] as string));
      compilePolicy(config.guard, { attribution: true });
      expect(config.guard.listen.map((l) => `${l.host}:${l.port}`)).toEqual(['127.0.0.1:16925']);
      expect(config.admin.listen).toBe('127.0.0.1:16926');
      expect(config.events.db).toMatch(/^\/var\/lib\/imdsguard\/guard\//);
      expect(config.guard.rules.at(-1)).toMatchObject({ name: 'pods-no-v1', action: 'deny', netns: 'other' });
    }
    expect(flag(argvOf(container('install')), '--port')).toBe('16925');
    expect(container('guard').readinessProbe?.httpGet).toMatchObject({ port: 16926, path: '/readyz' });
    // the state folder the guard writes is the one the init container hands to its uid
    const script = container('install').command[2] ?? '';
    expect(script).toContain('install -d -o 16925 -g 16925 -m 0750 /var/lib/imdsguard/guard');
  });

  it('names the image the Dockerfile builds', () => {
    const dockerfile = readFileSync(join(K8S, 'image', 'Dockerfile'), 'utf8');
    for (const c of containers)
      expect(c.name && (c as unknown as { image: string }).image).toBe('imdsguard:0.1.0');
    expect(dockerfile).toContain('-t imdsguard:0.1.0');
    for (const tool of ['nftables', 'iptables', 'iproute2']) expect(dockerfile).toContain(tool);
    expect(dirname(K8S)).toBe(join(ROOT, 'deploy'));
  });
});
