// The in-memory tail of a leaf's events (store/recent-events.ts): what it can vouch for and what
// it sends back to the log. Its pages are compared with the log's in the MvccStore suite.
import { describe, expect, it } from 'vitest';
import { RecentEvents } from '../../src/store/recent-events.ts';
import { EventType, type MvccEvent } from '../../src/store/types.ts';

const event = (key: string, rev: number): MvccEvent => ({
  type: EventType.PUT,
  kv: { key: Buffer.from(key), create_revision: rev, mod_revision: rev, version: 1, value: Buffer.from('v'), lease: 0 },
  prev_kv: null,
});

const revsOf = (page: ReturnType<RecentEvents['read']>) => page && { revs: page.revisions.map((r) => r.rev), complete: page.complete };

describe('RecentEvents', () => {
  it('answers only from its floor on: earlier history is the log', () => {
    const ring = new RecentEvents(10);
    ring.add(11, [event('a', 11)]);
    ring.add(13, [event('b', 13)]); // 12 went to another leaf
    expect(ring.read(9, 13, 100)).toBeNull();
    expect(revsOf(ring.read(10, 13, 100))).toEqual({ revs: [11, 13], complete: 13 });
    expect(revsOf(ring.read(11, 12, 100))).toEqual({ revs: [], complete: 12 });
  });

  it('drops its oldest revisions past its bounds and moves its floor with them', () => {
    const ring = new RecentEvents(0, 3);
    for (let rev = 1; rev <= 5; rev++) ring.add(rev, [event(`k${rev}`, rev)]);
    expect(ring.read(1, 5, 100)).toBeNull();
    expect(revsOf(ring.read(2, 5, 100))).toEqual({ revs: [3, 4, 5], complete: 5 });
  });

  it('keeps revisions in order when they arrive out of order', () => {
    const ring = new RecentEvents(0);
    ring.add(2, [event('b', 2)]);
    ring.add(1, [event('a', 1)]);
    expect(revsOf(ring.read(0, 2, 100))).toEqual({ revs: [1, 2], complete: 2 });
  });

  it('once disabled, sends every read to the log', () => {
    const ring = new RecentEvents(0);
    ring.add(1, [event('a', 1)]);
    ring.disable();
    ring.add(2, [event('b', 2)]);
    expect(ring.read(0, 2, 100)).toBeNull();
  });
});
