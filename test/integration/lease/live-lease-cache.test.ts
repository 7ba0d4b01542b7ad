// The live-lease cache's arithmetic (no I/O): entries are trusted for maxAgeMs after their
// request was sent, refreshed after refreshAfterMs, and an invalidation beats answers to
// requests sent before it.
import { describe, expect, it } from 'vitest';
import { LiveLeaseCache } from '../../../src/lease/live-lease-cache.ts';

function cache() {
  let now = 1000;
  const c = new LiveLeaseCache(2000, 500, () => now);
  return { c, advance: (ms: number) => (now += ms), at: () => now };
}

describe('LiveLeaseCache', () => {
  it('trusts an answer for maxAgeMs after its request was sent, and asks again after refreshAfterMs', () => {
    const { c, advance, at } = cache();
    expect(c.isLive(7)).toBe(false);
    expect(c.needsRefresh(7)).toBe(true);
    const sent = at();
    advance(100); // the reply took 100 ms: the age counts from the send
    c.record(7, true, sent);
    expect(c.isLive(7)).toBe(true);
    expect(c.needsRefresh(7)).toBe(false);
    advance(400);
    expect(c.needsRefresh(7)).toBe(true);
    expect(c.isLive(7)).toBe(true);
    advance(1499);
    expect(c.isLive(7)).toBe(true);
    advance(1);
    expect(c.isLive(7)).toBe(false);
  });

  it('a "not live" answer removes the entry; an older answer never replaces a newer one', () => {
    const { c, advance, at } = cache();
    const first = at();
    advance(300);
    c.record(1, true, at());
    c.record(1, true, first);
    advance(1800);
    expect(c.isLive(1)).toBe(true); // 1800 ms after the newer send
    c.record(1, false, at());
    expect(c.isLive(1)).toBe(false);
  });

  it('an invalidation beats answers to requests sent before it, not after', () => {
    const { c, advance, at } = cache();
    const before = at();
    advance(10);
    c.invalidate(3);
    c.record(3, true, before);
    expect(c.isLive(3)).toBe(false);
    advance(10);
    c.record(3, true, at());
    expect(c.isLive(3)).toBe(true);
  });

  it('prune drops aged entries; clear forgets all', () => {
    const { c, advance, at } = cache();
    c.record(1, true, at());
    advance(1000);
    c.record(2, true, at());
    advance(1000);
    c.prune();
    expect(c.size).toBe(1);
    c.clear();
    expect(c.size).toBe(0);
    expect(() => new LiveLeaseCache(500, 500)).toThrow(/must be below/);
  });
});
