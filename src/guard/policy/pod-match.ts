import type { RuleConfig } from '../../config/schema.js';
import type { Caller, PodRef } from '../attribution/types.js';
import { type CallerMatch, UNKNOWN } from './caller-match.js';
import { compilePatterns } from './match.js';

/**
 * Conditions on the caller's Kubernetes pod: `namespace`, `pod` (globs), `hostNetwork`,
 * and in a rule that has any of them, `container` names (the container's name in the pod spec;
 * elsewhere `container` strings stay container id prefixes, so a pod cannot name its container after
 * an id to match a rule written for that id). A caller that is not a pod never matches a pod key; a
 * pod field attribution could not read is UNKNOWN (the policy fails closed).
 */

/**
 * Whether the caller is a pod: known when attribution named one, or fully resolved the process and
 * found none (a process of the node itself); unknown otherwise.
 */
export function podOf(c: Caller): { known: boolean; pod?: PodRef } {
  if (c.pod) return { known: true, pod: c.pod };
  return { known: c.resolved === 'full' };
}

function podFieldMatch(
  globs: readonly string[],
  needs: string,
  field: (p: PodRef) => string | undefined,
): CallerMatch {
  const m = compilePatterns(globs);
  return {
    needs,
    test: (c) => {
      const k = podOf(c);
      if (!k.known) return UNKNOWN;
      if (!k.pod) return false;
      const v = field(k.pod);
      return v === undefined ? UNKNOWN : m(v);
    },
  };
}

function hostNetworkMatch(want: boolean): CallerMatch {
  return {
    needs: 'pod',
    test: (c) => {
      const k = podOf(c);
      if (!k.known) return UNKNOWN;
      return k.pod !== undefined && k.pod.hostNetwork === want;
    },
  };
}

/** True when a rule names Kubernetes pods (its container strings are then container names). */
export function isPodRule(rule: RuleConfig): boolean {
  return rule.namespace !== undefined || rule.pod !== undefined || rule.hostNetwork !== undefined;
}

/** The pod conditions of a rule (the container name too, for a pod rule). */
export function podTests(rule: RuleConfig): CallerMatch[] {
  const out: CallerMatch[] = [];
  if (rule.namespace) out.push(podFieldMatch(rule.namespace, 'pod namespace', (p) => p.namespace));
  if (rule.pod) out.push(podFieldMatch(rule.pod, 'pod name', (p) => p.name));
  if (rule.hostNetwork !== undefined) out.push(hostNetworkMatch(rule.hostNetwork));
  if (isPodRule(rule) && rule.container !== undefined && typeof rule.container !== 'boolean') {
    out.push(podFieldMatch(rule.container, 'pod container name', (p) => p.container));
  }
  return out;
}

/** "pod NAMESPACE/NAME" (or its uid, or "a pod"), for reasons. */
export function describePod(p: PodRef): string {
  if (p.namespace !== undefined && p.name !== undefined) return `pod ${p.namespace}/${p.name}`;
  return p.uid !== undefined ? `pod ${p.uid}` : 'a pod';
}
