// The events of a leaf's latest commits, kept in memory by the node that made them, so a watch
// feed can take them from here instead of reading them back from the log. Only valid where
// this process makes every write of the leaf (the in-memory allocator's single node): then
// every revision of the leaf after the ring's floor went through add(). Anything that breaks
// that (a commit whose outcome is unknown) turns the ring off for good.
import type { EventsPage, RevisionEvents } from './leaf-store.ts';

const MAX_REVISIONS = 10_000;
const MAX_BYTES = 64 * 1024 * 1024;

function sizeOf(entry: RevisionEvents): number {
  let bytes = 64;
  for (const e of entry.events) bytes += 128 + e.kv.key.length + e.kv.value.length + (e.prev_kv ? e.prev_kv.key.length + e.prev_kv.value.length : 0);
  return bytes;
}

export class RecentEvents {
  /** Every revision of the leaf above `floor` is either here or was dropped (then floor moved up). */
  private floor: number;
  /** Ascending by rev. */
  private entries: RevisionEvents[] = [];
  /** sizeOf(entries[i]), kept so dropping an entry need not measure it again. */
  private sizes: number[] = [];
  private start = 0;
  private bytes = 0;
  private enabled = true;

  /** `head`: the leaf's highest revision when this process started writing it. */
  constructor(
    head: number,
    private readonly maxRevisions = MAX_REVISIONS,
    private readonly maxBytes = MAX_BYTES,
  ) {
    this.floor = head;
  }

  /** Records the events of a committed revision (called before the revision is resolved). */
  add(rev: number, events: RevisionEvents['events']): void {
    if (!this.enabled || events.length === 0) return;
    const entry = { rev, events };
    const size = sizeOf(entry);
    // Commits resolve in revision order on a single writer (append); insert in order anyway.
    let i = this.entries.length;
    while (i > this.start && this.entries[i - 1].rev > rev) i--;
    if (i === this.entries.length) {
      this.entries.push(entry);
      this.sizes.push(size);
    } else {
      this.entries.splice(i, 0, entry);
      this.sizes.splice(i, 0, size);
    }
    this.bytes += size;
    while (this.entries.length - this.start > this.maxRevisions || (this.bytes > this.maxBytes && this.entries.length - this.start > 1)) {
      this.bytes -= this.sizes[this.start];
      this.floor = this.entries[this.start++].rev;
    }
    if (this.start > 1024 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start);
      this.sizes = this.sizes.slice(this.start);
      this.start = 0;
    }
  }

  /** From now on every read goes to the log (this process can no longer vouch for the ring). */
  disable(): void {
    this.enabled = false;
    this.entries = [];
    this.sizes = [];
    this.start = 0;
    this.bytes = 0;
  }

  /**
   * Events with after < rev <= upTo, whole revisions, about `limit` events at most, the same page
   * as LeafStore.events reads from the log; null when the ring does not cover `after`.
   */
  read(after: number, upTo: number, limit: number): EventsPage | null {
    if (!this.enabled || after < this.floor) return null;
    // First entry above `after` (binary search).
    let lo = this.start;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[mid].rev <= after) lo = mid + 1;
      else hi = mid;
    }
    const revisions: RevisionEvents[] = [];
    let count = 0;
    for (let i = lo; i < this.entries.length && this.entries[i].rev <= upTo; i++) {
      const entry = this.entries[i];
      // The log's page rule: never split a revision, stop before one that reaches the limit,
      // but a first revision that reaches it alone goes whole.
      if (count > 0 && count + entry.events.length >= limit) return { revisions, complete: entry.rev - 1 };
      revisions.push(entry);
      count += entry.events.length;
      if (count >= limit) return { revisions, complete: entry.rev };
    }
    return { revisions, complete: upTo };
  }
}
