import type { Caller } from '../attribution/types.js';
import { compilePatterns } from './match.js';

/**
 * Conditions on the calling process, compiled once. Each answers three-valued: true, false, or
 * UNKNOWN when attribution did not establish the fact the condition needs (the policy then fails
 * closed). A new kind of caller condition is one more function here and one line in rules.ts.
 */

/** Three-valued match: the caller fact was unknown. */
export const UNKNOWN = 2;
export type Tri = boolean | typeof UNKNOWN;

export interface CallerMatch {
  /** Which caller facts the condition needs, for the reason text. */
  needs: string;
  test(caller: Caller): Tri;
}

export function exeMatch(patterns: readonly string[]): CallerMatch {
  const m = compilePatterns(patterns);
  return { needs: 'executable', test: (c) => (c.exe === undefined ? UNKNOWN : m(c.exe)) };
}

export function userMatch(refs: ReadonlyArray<string | number>): CallerMatch {
  const uids = new Set(refs.filter((r): r is number => typeof r === 'number'));
  const names = new Set(refs.filter((r): r is string => typeof r === 'string'));
  return {
    needs: 'user',
    test: (c) => {
      if (c.uid !== undefined && uids.has(c.uid)) return true;
      if (c.user !== undefined && names.has(c.user)) return true;
      if (names.size > 0 && c.user === undefined) return UNKNOWN;
      if (uids.size > 0 && c.uid === undefined) return UNKNOWN;
      return false;
    },
  };
}

/** Container facts are known when attribution fully resolved the process or found a container. */
function containerOf(c: Caller): { known: boolean; id?: string } {
  if (c.container) return { known: true, id: c.container.id };
  return { known: c.resolved === 'full' };
}

export function containerMatch(spec: boolean | readonly string[]): CallerMatch {
  return {
    needs: 'container',
    test: (c) => {
      const k = containerOf(c);
      if (!k.known) return UNKNOWN;
      if (spec === true) return k.id !== undefined;
      if (spec === false) return k.id === undefined;
      return k.id !== undefined && spec.some((p) => (k.id as string).startsWith(p));
    },
  };
}

export function netnsOf(c: Caller): 'host' | 'other' | undefined {
  if (c.netns) return c.netns;
  return c.resolved === 'full' ? 'host' : undefined;
}

export function netnsMatch(ns: 'host' | 'other'): CallerMatch {
  return {
    needs: 'network namespace',
    test: (c) => {
      const n = netnsOf(c);
      return n === undefined ? UNKNOWN : n === ns;
    },
  };
}

export function parentMatch(patterns: readonly string[]): CallerMatch {
  const m = compilePatterns(patterns);
  return {
    needs: 'parent executable',
    test: (c) => {
      if (c.parents === undefined) return UNKNOWN;
      let unknown = false;
      for (const p of c.parents) {
        if (p.exe === undefined) unknown = true;
        else if (m(p.exe)) return true;
      }
      return unknown ? UNKNOWN : false;
    },
  };
}
