import type { Check } from './doctor.js';
import type { DoctorFacts } from './doctor-facts.js';
import { IMDS_V6, interfaceMatches, isInterfacePattern } from './types.js';

/**
 * PURE: the `containers` check of doctor. For each bridge and pod interface pattern install recorded:
 * its IPv4 metadata traffic is DNATed to the guard port, its other traffic to 127.0.0.0/8 is dropped,
 * route_localnet is on (for a pattern: on every interface that matches it now), and with IPv6 its
 * IPv6 metadata traffic is refused.
 */

/** Most interface names one problem lists (a node may have hundreds of pods). */
export const MAX_NAMED_INTERFACES = 5;

function names(list: readonly string[]): string {
  const shown = list.slice(0, MAX_NAMED_INTERFACES).join(', ');
  return list.length > MAX_NAMED_INTERFACES
    ? `${shown} and ${list.length - MAX_NAMED_INTERFACES} more`
    : shown;
}

function fixCommand(expected: readonly string[], ipv6: boolean): string {
  const bridges = expected.filter((e) => !isInterfacePattern(e));
  const patterns = expected.filter(isInterfacePattern);
  const parts = ['sudo imdsguard install --apply'];
  if (bridges.length > 0) parts.push(`--containers --bridges ${bridges.join(',')}`);
  if (patterns.length > 0) parts.push(`--pod-interfaces ${patterns.join(',')}`);
  if (ipv6) parts.push('--ipv6');
  return parts.join(' ');
}

export function containersCheck(facts: DoctorFacts): Check {
  const rules = facts.redirects.bridges ?? { dnat: [], v6Refused: [], loopbackDrop: [] };
  const expected =
    facts.containers.expected.length > 0 ? facts.containers.expected : rules.dnat.map((d) => d.bridge);
  if (expected.length === 0) {
    return {
      id: 'containers',
      status: 'ok',
      detail:
        'no container interfaces installed (install --containers redirects bridges, --pod-interfaces pod veths)',
      fix: '',
    };
  }
  const problems: string[] = [];
  const absent: string[] = [];
  const counts: string[] = [];
  const pods = facts.containers.podInterfaces ?? {};
  for (const b of expected) {
    const dnat = rules.dnat.find((d) => d.bridge === b);
    if (!dnat) problems.push(`${b}: no DNAT to the guard, so containers reach IMDS around it`);
    else if (dnat.port !== facts.port)
      problems.push(`${b}: DNAT to port ${dnat.port}, but the guard port is ${facts.port}`);
    if (dnat && !rules.loopbackDrop.includes(b))
      problems.push(
        `${b}: nothing drops its other traffic to 127.0.0.0/8, which route_localnet lets through`,
      );
    if (isInterfacePattern(b)) {
      const matching = Object.keys(pods)
        .filter((n) => interfaceMatches(b, n))
        .sort();
      const off = matching.filter((n) => !pods[n]);
      counts.push(`${b} ${matching.length} interface${matching.length === 1 ? '' : 's'}`);
      if (off.length > 0)
        problems.push(
          `${names(off)} (${b}): route_localnet is 0, so the DNAT to 127.0.0.1 is dropped (is the interface watcher running? install --watch-interfaces)`,
        );
    } else {
      const local = facts.containers.routeLocalnet[b];
      if (local === undefined) absent.push(b);
      else if (!local) problems.push(`${b}: route_localnet is 0, so the DNAT to 127.0.0.1 is dropped`);
    }
    if (facts.ipv6Expected && !rules.v6Refused.includes(b))
      problems.push(
        `${b}: IPv6 metadata traffic is not refused, so containers reach [${IMDS_V6}] around the guard`,
      );
  }
  if (problems.length > 0) {
    return {
      id: 'containers',
      status: 'fail',
      detail: problems.join('; '),
      fix: fixCommand(expected, facts.ipv6Expected),
    };
  }
  const notes = [
    ...(absent.length > 0 ? [`${absent.join(', ')} not present yet`] : []),
    ...(counts.length > 0 ? [`now: ${counts.join(', ')}`] : []),
  ];
  return {
    id: 'containers',
    status: 'ok',
    detail: `${expected.join(', ')} -> 127.0.0.1:${facts.port}${facts.ipv6Expected ? ', IPv6 refused' : ''}${
      notes.length > 0 ? ` (${notes.join('; ')})` : ''
    }`,
    fix: '',
  };
}
