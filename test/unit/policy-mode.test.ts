import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { applyMode, compilePolicy, type Decision, protocolDeny } from '../../src/guard/policy/index.js';
import { classifyRequest } from '../../src/imds/classify.js';

/** applyMode (what a mode does with a decision) and Decision.by (which step decided). */

const allow: Decision = {
  decision: 'allow',
  rule: 'imdsv2',
  reason: 'r',
  status: 200,
  alert: false,
  by: 'default',
  everyMode: false,
};
const allowAlert: Decision = { ...allow, rule: 'creds', alert: true, by: 'rule' };
const deny: Decision = { ...allow, decision: 'deny', rule: 'default-deny-v1', status: 401, alert: true };
const framing = protocolDeny('smuggling', 'ambiguous framing', 400);

describe('applyMode', () => {
  it('enforce forwards allows and refuses denies', () => {
    expect(applyMode(allow, 'enforce')).toEqual({ action: 'forwarded', alert: false });
    expect(applyMode(allowAlert, 'enforce')).toEqual({ action: 'forwarded', alert: true });
    expect(applyMode(deny, 'enforce')).toEqual({ action: 'refused', alert: true });
    expect(applyMode(framing, 'enforce')).toEqual({ action: 'refused', alert: true });
  });

  it('monitor flags denies instead of refusing them, except those that hold in every mode', () => {
    expect(applyMode(allow, 'monitor')).toEqual({ action: 'forwarded', alert: false });
    expect(applyMode(deny, 'monitor')).toEqual({ action: 'flagged', alert: true });
    expect(applyMode(framing, 'monitor')).toEqual({ action: 'refused', alert: true });
  });

  it('trap answers everything from the trap and alerts, except what holds in every mode', () => {
    expect(applyMode(allow, 'trap')).toEqual({ action: 'trapped', alert: true });
    expect(applyMode(deny, 'trap')).toEqual({ action: 'trapped', alert: true });
    expect(applyMode(framing, 'trap')).toEqual({ action: 'refused', alert: true });
  });
});

describe('Decision.by says which step decided', () => {
  const cfg = parseConfig({
    guard: {
      rules: [{ name: 'no-user-data', path: '/latest/user-data', action: 'deny' }],
    },
  }).guard;
  const p = compilePolicy(cfg, { attribution: false });
  const req = (method: string, target: string, headers: Record<string, string>) => {
    const h = { host: '169.254.169.254', ...headers };
    const raw = Object.entries(h).flat();
    return classifyRequest(
      { method, target, rawHeaders: raw, local: { address: '127.0.0.1', port: 16925 } },
      'aws',
      'x-meta-auth',
    );
  };

  it('protocol checks', () => {
    const d = p.decide(req('GET', '/latest/meta-data/', { 'x-forwarded-for': '1.2.3.4' }));
    expect(d).toMatchObject({ rule: 'forwarding-header', by: 'protocol', everyMode: false });
    const s = p.decide(req('GET', '/latest/meta-data/%zz', {}));
    expect(s).toMatchObject({ rule: 'malformed-path', by: 'protocol', everyMode: true });
  });

  it('a configured rule, whatever its name', () => {
    const d = p.decide(req('GET', '/latest/user-data', { 'x-aws-ec2-metadata-token': 'AQAEAt' }));
    expect(d).toMatchObject({ decision: 'deny', rule: 'no-user-data', by: 'rule', everyMode: false });
  });

  it('the defaults', () => {
    expect(
      p.decide(req('GET', '/latest/meta-data/', { 'x-aws-ec2-metadata-token': 'AQAEAt' })),
    ).toMatchObject({
      rule: 'imdsv2',
      by: 'default',
    });
    expect(p.decide(req('GET', '/latest/meta-data/', {}))).toMatchObject({
      rule: 'default-deny-v1',
      by: 'default',
    });
  });
});
