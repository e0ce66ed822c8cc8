import { describe, expect, it } from 'vitest';
import { GuardMetrics } from '../../src/guard/metrics/guard-metrics.js';
import { escapeLabelValue, Registry } from '../../src/guard/metrics/registry.js';
import { isLoopbackHost } from '../../src/net/listen.js';
import { makeEvent } from '../support/guard-events.js';

describe('metrics registry', () => {
  it('renders counters, gauges and histograms in the text format', () => {
    const r = new Registry();
    const c = r.counter('t_total', 'A counter.');
    c.inc({ b: '2', a: '1' });
    c.inc({ a: '1', b: '2' }, 2);
    r.gauge('t_depth', 'A gauge.', () => [[{}, 7]]);
    const h = r.histogram('t_seconds', 'A histogram.', [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    expect(r.render()).toBe(
      [
        '# HELP t_total A counter.',
        '# TYPE t_total counter',
        't_total{a="1",b="2"} 3',
        '# HELP t_depth A gauge.',
        '# TYPE t_depth gauge',
        't_depth 7',
        '# HELP t_seconds A histogram.',
        '# TYPE t_seconds histogram',
        't_seconds_bucket{le="0.1"} 1',
        't_seconds_bucket{le="1"} 2',
        't_seconds_bucket{le="+Inf"} 3',
        't_seconds_sum 5.55',
        't_seconds_count 3',
        '',
      ].join('\n'),
    );
  });

  it('escapes label values and bounds the number of series', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const r = new Registry(3);
    const c = r.counter('x_total', 'x');
    for (let i = 0; i < 100; i++) c.inc({ k: String(i) });
    const lines = r
      .render()
      .split('\n')
      .filter((l) => l.startsWith('x_total'));
    expect(lines).toHaveLength(4);
    expect(lines).toContain('x_total{overflow="true"} 97');
  });
});

describe('guard metrics', () => {
  it('counts requests by decision, rule and version, and observes latencies in seconds', () => {
    const m = new GuardMetrics();
    m.record(makeEvent({ upstream: { status: 200, latencyMs: 3 }, attributionMs: 0.2 }));
    m.record(
      makeEvent({
        decision: 'allow',
        action: 'forwarded',
        rule: 'imdsv2',
        alert: false,
        request: { version: 'v2' },
      }),
    );
    m.record(makeEvent({ upstream: { error: 'timeout' } }));
    const text = m.render();
    expect(text).toContain(
      'imdsguard_requests_total{action="refused",decision="deny",rule="default-deny-v1",version="v1"} 2',
    );
    expect(text).toContain(
      'imdsguard_requests_total{action="forwarded",decision="allow",rule="imdsv2",version="v2"} 1',
    );
    expect(text).toContain('imdsguard_upstream_latency_seconds_bucket{le="0.005"} 2');
    expect(text).toContain('imdsguard_upstream_latency_seconds_sum 0.006');
    expect(text).toContain('imdsguard_upstream_errors_total{error="timeout"} 1');
    expect(text).toContain('imdsguard_attribution_latency_seconds_count 3');
  });
});

describe('loopback check', () => {
  it('accepts loopback only', () => {
    for (const h of ['127.0.0.1', '127.9.9.9', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '169.254.169.254', 'example.com', '128.0.0.1'])
      expect(isLoopbackHost(h)).toBe(false);
  });
});
