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

  it('bounds its bytes by the size of each revision it holds, through out-of-order arrivals and compactions', () => {
    const sized = (rev: number, bytes: number): MvccEvent => ({ ...event('k', rev), kv: { ...event('k', rev).kv, value: Buffer.alloc(bytes) } });
    const big = 1000;
    const small = 10;
    // Room for two big revisions and a small one (each costs its value plus a fixed overhead).
    const ring = new RecentEvents(0, 100_000, 2 * (big + 193) + (small + 193) + 10);
    // Enough big revisions to have the ring compact its arrays (every big one fits with one more).
    let rev = 0;
    while (rev < 1500) ring.add(++rev, [sized(rev, big)]);
    // rev+2 arrives before rev+1 (small): the ring holds rev, rev+1, rev+2.
    ring.add(rev + 2, [sized(rev + 2, big)]);
    ring.add(rev + 1, [sized(rev + 1, small)]);
    expect(revsOf(ring.read(rev - 1, rev + 2, 100))?.revs).toEqual([rev, rev + 1, rev + 2]);
    // Another big one: rev goes, which frees enough.
    ring.add(rev + 3, [sized(rev + 3, big)]);
    expect(ring.read(rev - 1, rev + 3, 100)).toBeNull();
    expect(revsOf(ring.read(rev, rev + 3, 100))).toEqual({ revs: [rev + 1, rev + 2, rev + 3], complete: rev + 3 });
    // Then one bigger than what two big revisions and the small one leave room for: both rev+1
    // and rev+2 go (rev+1 alone frees too little).
    ring.add(rev + 4, [sized(rev + 4, big + 50)]);
    expect(ring.read(rev + 1, rev + 4, 100)).toBeNull();
    expect(revsOf(ring.read(rev + 2, rev + 4, 100))).toEqual({ revs: [rev + 3, rev + 4], complete: rev + 4 });
    // A small one in order, then big ones: it stays with two big ones, and when it goes it frees
    // only its own size.
    ring.add(rev + 5, [sized(rev + 5, small)]);
    for (const r of [rev + 6, rev + 7]) ring.add(r, [sized(r, big)]);
    expect(revsOf(ring.read(rev + 4, rev + 7, 100))?.revs).toEqual([rev + 5, rev + 6, rev + 7]);
    ring.add(rev + 8, [sized(rev + 8, big)]);
    expect(ring.read(rev + 5, rev + 8, 100)).toBeNull();
    expect(revsOf(ring.read(rev + 6, rev + 8, 100))).toEqual({ revs: [rev + 7, rev + 8], complete: rev + 8 });
  });

  it('once disabled, sends every read to the log', () => {
    const ring = new RecentEvents(0);
    ring.add(1, [event('a', 1)]);
    ring.disable();
    ring.add(2, [event('b', 2)]);
    expect(ring.read(0, 2, 100)).toBeNull();
  });
});
