import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { isImdsguardError } from '../../src/errors.js';
import type { Caller, PodRef } from '../../src/guard/attribution/types.js';
import { compilePolicy } from '../../src/guard/policy/index.js';
import { classifyRequest } from '../../src/imds/classify.js';
import { type HeaderMap, rawHeaderList } from '../support/header-list.js';

/**
 * Kubernetes pods in the policy: by default a pod gets the instance's hop-limit-1
 * behaviour (a pod's token PUT is refused unless a rule allows the pod; a hostNetwork pod is on the
 * host, where hop limit 1 lets the token through) and no IMDSv1 unless a rule allows it. Rules match
 * namespace, pod (a glob), container (the name in the pod spec) and hostNetwork.
 */

const LOCAL = { address: '127.0.0.1', port: 16925 };
const TOKEN = { 'x-aws-ec2-metadata-token': 'AQAEAtoken' };

function policy(guard: Record<string, unknown> = {}) {
  return compilePolicy(parseConfig({ guard }).guard, { attribution: true });
}

function req(method: string, target: string, headers: HeaderMap = {}, clientNetns?: 'host' | 'other') {
  return classifyRequest(
    {
      method,
      target,
      rawHeaders: rawHeaderList({ host: '169.254.169.254', ...headers }),
      local: LOCAL,
      clientNetns,
    },
    'aws',
    'x-meta-auth',
  );
}
const tokenPut = (ns?: 'host' | 'other', extra: HeaderMap = {}) =>
  req('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': '21600', ...extra }, ns);
const v1 = (headers: HeaderMap = {}, ns?: 'host' | 'other') =>
  req('GET', '/latest/meta-data/iam/security-credentials/', headers, ns);

const ref = (p: Partial<PodRef>): PodRef => ({ hostNetwork: false, source: 'cgroup', ...p });

/** A process in pod default/web-7d9f (container "app"), seen through the pod's own netns. */
const webPod: Caller = {
  resolved: 'full',
  pid: 4001,
  exe: '/usr/local/bin/aws',
  uid: 0,
  user: 'root',
  container: { id: 'f00dfeed'.repeat(8), runtime: 'containerd', podUid: '1b2c' },
  netns: 'other',
  pod: ref({ namespace: 'default', name: 'web-7d9f', uid: '1b2c', container: 'app' }),
};
/** The VPC CNI's node agent: a hostNetwork DaemonSet pod. */
const awsNode: Caller = {
  ...webPod,
  pid: 4002,
  exe: '/app/aws-k8s-agent',
  netns: 'host',
  container: { id: 'abcd'.repeat(16), runtime: 'containerd' },
  pod: ref({ namespace: 'kube-system', name: 'aws-node-x2x9z', container: 'aws-node', hostNetwork: true }),
};
/** A pod named by its address only (its process was not found): no container name. */
const byAddress: Caller = {
  resolved: 'partial',
  netns: 'other',
  pod: ref({ namespace: 'monitoring', name: 'agent-5f', source: 'address' }),
};
const hostProcess: Caller = {
  resolved: 'full',
  pid: 77,
  exe: '/usr/bin/amazon-ssm-agent',
  uid: 0,
  user: 'root',
  netns: 'host',
};
const unnamed: Caller = { resolved: 'none', netns: 'other', error: 'socket not found' };

describe('pods by default', () => {
  const p = policy({ allowExe: ['/usr/local/bin/aws'], allowUser: ['root'] });

  it('a pod may not get a token: the hop limit of 1, kept by the guard', () => {
    const d = p.decide(tokenPut('other'), webPod);
    expect(d).toMatchObject({ decision: 'deny', rule: 'container-token', status: 403 });
    expect(d.reason).toContain('pod default/web-7d9f');
    // allowExe and allowUser name what the pod chooses itself: they do not let a pod through.
    expect(p.decide(tokenPut('other'), { ...webPod, exe: '/usr/local/bin/aws', user: 'root' }).rule).toBe(
      'container-token',
    );
    expect(p.decide(tokenPut('other'), byAddress).rule).toBe('container-token');
    // A token-bearing GET is IMDSv2 (the pod could not have got the token from the guard).
    expect(p.decide(req('GET', '/latest/meta-data/', TOKEN, 'other'), webPod).rule).toBe('imdsv2');
  });

  it('a hostNetwork pod gets a token as the node would at hop limit 1', () => {
    expect(p.decide(tokenPut('host'), awsNode).rule).toBe('imdsv2-token');
    // ...which a plain container sharing the host network does not (unchanged).
    const { pod: _pod, ...dockerHostNet } = awsNode;
    expect(policy().decide(tokenPut('host'), dockerHostNet).rule).toBe('container-token');
  });

  it('no pod gets IMDSv1, whatever User-Agent, Metadata-Flavor, executable or user it shows', () => {
    for (const headers of [{}, { 'user-agent': 'aws-cli/2.15.0' }, { 'metadata-flavor': 'Amazon' }]) {
      for (const c of [webPod, awsNode, byAddress]) {
        const d = p.decide(v1(headers, c.netns), c);
        expect(d, `${JSON.stringify(headers)} ${c.pod?.name}`).toMatchObject({
          decision: 'deny',
          rule: 'pod-v1',
          status: 401,
        });
      }
    }
    expect(p.decide(v1({}, 'other'), webPod).reason).toBe(
      'tokenless (IMDSv1) request from pod default/web-7d9f: pods use IMDSv2, or a rule that allows the pod',
    );
    // The node's own processes keep the host policy.
    expect(p.decide(v1({ 'user-agent': 'aws-cli/2.15.0' }, 'host'), hostProcess).rule).toBe('ua-allowlist');
    expect(p.decide(v1({}, 'host'), hostProcess).rule).toBe('allowed-caller');
  });

  it('waits for the caller of a tokenless request from another namespace, not from the host', () => {
    expect(p.needsCaller(v1({ 'user-agent': 'aws-cli/2' }, 'other'))).toBe(true);
    expect(p.needsCaller(v1({ 'user-agent': 'aws-cli/2' }, 'host'))).toBe(false);
    // Without a pod name the old container rules stand (see the recipe for the deny rule that closes it).
    expect(p.decide(v1({ 'user-agent': 'aws-cli/2' }, 'other'), unnamed).rule).toBe('ua-allowlist');
  });

  it('the secret and containerTokens: allow are the operator’s own switches', () => {
    const q = policy({ authSecret: 'a-long-secret-value', containerTokens: 'allow' });
    expect(q.decide(v1({ 'x-meta-auth': 'a-long-secret-value' }, 'other'), webPod).rule).toBe('auth-header');
    expect(q.decide(tokenPut('other'), webPod).rule).toBe('imdsv2-token');
    expect(q.decide(v1({}, 'other'), webPod).rule).toBe('pod-v1');
    expect(p.decide(tokenPut('other', { 'x-meta-auth': 'x' }), webPod).rule).toBe('container-token');
  });
});

describe('rules that name pods', () => {
  it('let one DaemonSet have node metadata, and only it', () => {
    const p = policy({
      rules: [
        {
          name: 'node-agent',
          action: 'allow',
          namespace: 'monitoring',
          pod: 'agent-*',
        },
      ],
    });
    expect(p.decide(tokenPut('other'), byAddress)).toMatchObject({ decision: 'allow', rule: 'node-agent' });
    expect(p.decide(v1({}, 'other'), byAddress).rule).toBe('node-agent');
    expect(p.decide(tokenPut('other'), webPod).rule).toBe('container-token');
    const lookalike = { ...byAddress, pod: ref({ namespace: 'default', name: 'agent-5f' }) };
    expect(p.decide(tokenPut('other'), lookalike).rule).toBe('container-token');
    // A host process is no pod: the rule does not match it, the host policy decides.
    expect(p.decide(tokenPut('host'), hostProcess).rule).toBe('imdsv2-token');
  });

  it('match globs on namespace and pod, container names and hostNetwork', () => {
    const p = policy({
      rules: [
        { name: 'cni', action: 'allow', namespace: 'kube-*', hostNetwork: true, container: 'aws-node' },
        { name: 'no-host-pods', action: 'deny', hostNetwork: true, version: 'token' },
        { name: 'web', action: 'allow', pod: ['web-????', 'api-*'], container: ['app', 'side?ar'] },
      ],
    });
    expect(p.decide(tokenPut('host'), awsNode).rule).toBe('cni');
    const otherContainer = { ...awsNode, pod: ref({ ...awsNode.pod, container: 'aws-eks-nodeagent' }) };
    expect(p.decide(tokenPut('host'), otherContainer).rule).toBe('no-host-pods');
    expect(p.decide(tokenPut('other'), webPod).rule).toBe('web');
    const sidecar = { ...webPod, pod: ref({ ...webPod.pod, container: 'sidecar' }) };
    expect(p.decide(tokenPut('other'), sidecar).rule).toBe('web');
    const longer = { ...webPod, pod: ref({ ...webPod.pod, name: 'web-7d9fx' }) };
    expect(p.decide(tokenPut('other'), longer).rule).toBe('container-token');
  });

  it('fail closed when the pod fact the rule needs is unknown', () => {
    const p = policy({
      rules: [{ name: 'ns', action: 'allow', namespace: 'monitoring', container: 'agent' }],
    });
    // named by address: no container name, so the rule cannot be decided
    const d = p.decide(tokenPut('other'), byAddress);
    expect(d).toMatchObject({ decision: 'deny', rule: 'attribution-required' });
    expect(d.reason).toContain('pod container name');
    // not named at all
    expect(p.decide(tokenPut('other'), unnamed).rule).toBe('attribution-required');
    // a pod with no namespace known
    const noNs = { ...webPod, pod: ref({ name: 'web-7d9f', container: 'agent' }) };
    expect(p.decide(tokenPut('other'), noNs).reason).toContain('pod namespace');
  });

  it('keep container id prefixes for rules without pod keys: a pod cannot name its way in', () => {
    const p = policy({ rules: [{ name: 'by-id', action: 'allow', container: ['3f2a9b'] }] });
    // an attacker's pod whose container is *named* 3f2a9b, with another id
    const attacker = { ...webPod, pod: ref({ ...webPod.pod, container: '3f2a9b' }) };
    expect(p.decide(tokenPut('other'), attacker).rule).toBe('container-token');
    const real = { ...webPod, container: { id: `3f2a9b${'0'.repeat(58)}`, runtime: 'containerd' as const } };
    expect(p.decide(tokenPut('other'), real).rule).toBe('by-id');
  });

  it('describe the pod keys in the reason', () => {
    const p = policy({ rules: [{ action: 'deny', namespace: 'default', pod: 'web-*', hostNetwork: false }] });
    expect(p.decide(req('GET', '/latest/meta-data/', TOKEN, 'other'), webPod).reason).toBe(
      'denied by rule rule[0] (namespace default, pod web-*, hostNetwork false)',
    );
  });
});

describe('pod keys in the configuration', () => {
  const bad = (rule: Record<string, unknown>) => {
    try {
      parseConfig({ guard: { rules: [rule] } });
    } catch (e) {
      return isImdsguardError(e, 'IMDSGUARD_E_CONFIG') ? (e as Error).message : 'other error';
    }
    return 'accepted';
  };
  it('accept Kubernetes names and globs, and refuse anything else', () => {
    expect(bad({ action: 'allow', hostNetwork: false })).toBe('accepted');
    expect(bad({ action: 'allow', namespace: ['kube-system', 'team-*'], pod: 'a.b-1?' })).toBe('accepted');
    expect(bad({ action: 'allow', namespace: 'Kube_System' })).toContain('guard.rules[0].namespace');
    expect(bad({ action: 'allow', pod: 'web/../x' })).toContain('guard.rules[0].pod');
    expect(bad({ action: 'allow', pod: 'web', container: ['app', 'App Server'] })).toContain(
      'guard.rules[0].container[1]',
    );
    // without pod keys, container strings are id prefixes as before
    expect(bad({ action: 'allow', container: ['ABC123'] })).toBe('accepted');
    expect(bad({ action: 'allow', hostNetwork: 'yes' })).toContain('guard.rules[0].hostNetwork');
  });
});
