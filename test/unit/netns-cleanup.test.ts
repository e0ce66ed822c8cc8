import { describe, expect, it } from 'vitest';
import {
  MAX_CLEANUP,
  NETNS_NAME_RE,
  namespacesToDelete,
  parseNetnsList,
  parsePids,
} from '../support/netns-cleanup.js';

const TAG = '0a1b2c3d';

describe('namespacesToDelete', () => {
  it('picks the names this run created: imdsg- prefix, this run tag, absent at setup', () => {
    const before = ['imdsg-old-aaaaaa-0a1b2c3d', 'imdsg-host-111111', 'docker-ns'];
    const after = [
      ...before,
      'imdsg-guard-bbbbbb-0a1b2c3d', // ours, new: delete
      'imdsg-attr-cccccc-0a1b2c3d', // ours, new: delete
      'imdsg-bench-dddddd', // a benchmark's (no tag): keep
      'imdsg-guard-eeeeee-ffffffff', // another concurrent run's tag: keep
      'cni-0a1b2c3d', // not imdsg-: keep
      'other-imdsg-x-0a1b2c3d', // prefix not at the start: keep
    ];
    expect(namespacesToDelete(before, after, TAG)).toEqual([
      'imdsg-attr-cccccc-0a1b2c3d',
      'imdsg-guard-bbbbbb-0a1b2c3d',
    ]);
  });

  it('never deletes a namespace that existed at setup, even with this run tag', () => {
    const names = ['imdsg-a-000000-0a1b2c3d', 'imdsg-b-111111-0a1b2c3d'];
    expect(namespacesToDelete(names, names, TAG)).toEqual([]);
    expect(namespacesToDelete([], names, TAG)).toEqual(names);
  });

  it('refuses a malformed tag, odd names and the bare prefix', () => {
    const after = ['imdsg-x-000000-0a1b2c3d'];
    for (const bad of ['', 'zzzzzzzz', '0a1b2c3', '0a1b2c3d0', '0A1B2C3D', '.*']) {
      expect(namespacesToDelete([], after, bad)).toEqual([]);
    }
    expect(
      namespacesToDelete(
        [],
        ['imdsg--0a1b2c3d', 'imdsg-a/b-0a1b2c3d', 'imdsg-a b-0a1b2c3d', `imdsg-${'x'.repeat(200)}-0a1b2c3d`],
        TAG,
      ),
    ).toEqual([]);
  });

  it('returns each name once, sorted, and at most MAX_CLEANUP', () => {
    expect(
      namespacesToDelete([], ['imdsg-b-1-0a1b2c3d', 'imdsg-a-1-0a1b2c3d', 'imdsg-b-1-0a1b2c3d'], TAG),
    ).toEqual(['imdsg-a-1-0a1b2c3d', 'imdsg-b-1-0a1b2c3d']);
    const many = Array.from({ length: MAX_CLEANUP + 5 }, (_, i) => `imdsg-n${i}-0a1b2c3d`);
    expect(namespacesToDelete([], many, TAG)).toHaveLength(MAX_CLEANUP);
  });

  it('every name it returns matches NETNS_NAME_RE', () => {
    for (const n of namespacesToDelete([], ['imdsg-ok-1-0a1b2c3d', 'imdsg-é-0a1b2c3d'], TAG)) {
      expect(n).toMatch(NETNS_NAME_RE);
    }
    expect(namespacesToDelete([], ['imdsg-é-0a1b2c3d'], TAG)).toEqual([]);
  });
});

describe('parsers of ip output', () => {
  it('parses `ip netns list` with and without ids', () => {
    expect(parseNetnsList('imdsg-a-1-0a1b2c3d (id: 3)\nplain\n\n  spaced (id: 0)\n')).toEqual([
      'imdsg-a-1-0a1b2c3d',
      'plain',
      'spaced',
    ]);
    expect(parseNetnsList('')).toEqual([]);
  });

  it('parses `ip netns pids`, dropping pid 0/1, our own pid and junk', () => {
    expect(parsePids(`123\n1\n0\n${process.pid}\nabc\n4567\n`)).toEqual([123, 4567]);
    expect(parsePids('')).toEqual([]);
  });
});
