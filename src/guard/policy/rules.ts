import type { RuleConfig } from '../../config/schema.js';
import { ImdsguardError } from '../../errors.js';
import type { ClassifiedRequest } from '../../imds/classify.js';
import {
  type CallerMatch,
  containerMatch,
  exeMatch,
  netnsMatch,
  parentMatch,
  userMatch,
} from './caller-match.js';
import { compilePatterns, type Matcher, pathForMatch } from './match.js';
import { isPodRule, podTests } from './pod-match.js';

/**
 * The configured rules (guard.rules), compiled once: request conditions (path, method, version,
 * User-Agent) and caller conditions (exe, user, container, parent, netns, and a Kubernetes pod's
 * namespace, name, container and hostNetwork: pod-match.ts). All of a rule's conditions must match.
 */

export interface CompiledRule {
  name: string;
  action: 'allow' | 'deny';
  reason: string;
  alert: boolean;
  requestTests: Array<(r: ClassifiedRequest) => boolean>;
  callerTests: CallerMatch[];
}

export function compileRule(rule: RuleConfig, index: number): CompiledRule {
  const name = rule.name ?? `rule[${index}]`;
  const requestTests: CompiledRule['requestTests'] = [];
  const callerTests: CallerMatch[] = [];
  try {
    if (rule.path) {
      const m: Matcher = compilePatterns(rule.path, true);
      requestTests.push((r) => m(pathForMatch(r.path)));
    }
    if (rule.method) {
      const set = new Set(rule.method.map((x) => x.toUpperCase()));
      requestTests.push((r) => set.has(r.method));
    }
    if (rule.version) {
      const set = new Set<string>(rule.version);
      requestTests.push((r) => set.has(r.version));
    }
    if (rule.userAgent) {
      const prefixes = rule.userAgent;
      requestTests.push((r) => r.userAgent !== undefined && prefixes.some((p) => r.userAgent!.startsWith(p)));
    }
    if (rule.exe) callerTests.push(exeMatch(rule.exe));
    if (rule.user) callerTests.push(userMatch(rule.user));
    callerTests.push(...podTests(rule));
    if (rule.container !== undefined && !(isPodRule(rule) && typeof rule.container !== 'boolean'))
      callerTests.push(containerMatch(rule.container));
    if (rule.parentExe) callerTests.push(parentMatch(rule.parentExe));
    if (rule.netns) callerTests.push(netnsMatch(rule.netns));
  } catch (err) {
    throw new ImdsguardError(
      'IMDSGUARD_E_RULE',
      `guard.rules[${index}] (${name}): ${(err as Error).message}`,
      {
        cause: err,
        details: { rule: JSON.stringify(rule) },
      },
    );
  }
  const conds = describeRule(rule);
  return {
    name,
    action: rule.action,
    reason: rule.reason ?? `${rule.action === 'allow' ? 'allowed' : 'denied'} by rule ${name} (${conds})`,
    alert: rule.alert ?? rule.action === 'deny',
    requestTests,
    callerTests,
  };
}

function describeRule(rule: RuleConfig): string {
  const parts: string[] = [];
  if (rule.path) parts.push(`path ${rule.path.join('|')}`);
  if (rule.method) parts.push(`method ${rule.method.join('|')}`);
  if (rule.version) parts.push(`version ${rule.version.join('|')}`);
  if (rule.userAgent) parts.push('user-agent prefix');
  if (rule.exe) parts.push(`exe ${rule.exe.join('|')}`);
  if (rule.user) parts.push(`user ${rule.user.join('|')}`);
  if (rule.namespace) parts.push(`namespace ${rule.namespace.join('|')}`);
  if (rule.pod) parts.push(`pod ${rule.pod.join('|')}`);
  if (rule.hostNetwork !== undefined) parts.push(`hostNetwork ${rule.hostNetwork}`);
  if (rule.container !== undefined) parts.push(`container ${String(rule.container)}`);
  if (rule.parentExe) parts.push(`parent ${rule.parentExe.join('|')}`);
  if (rule.netns) parts.push(`netns ${rule.netns}`);
  return parts.join(', ');
}
