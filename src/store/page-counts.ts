// Counts of paginated lists, remembered between pages. etcd answers every page of a list with
// the count of the whole remaining range, from its in-memory index; a leaf has to run a COUNT
// over the range for each page, which costs as much as reading the page again. But the next
// page's count is known without asking: a page read of [start, end) in key order at a state
// that can no longer change (every revision up to it is resolved) with count C and n keys up
// to key K means [K+"\0", end) holds C - n keys at that same state. kube-apiserver's pages and
// `etcdctl get --prefix` continuations ask exactly for that range next.
import { LRUCache } from 'lru-cache';

const SUCCESSOR = Buffer.from([0]);

export class PageCounts {
  private readonly counts = new LRUCache<string, number>({ max: 512 });

  private static id(stateRev: number, start: Buffer, end: Buffer): string {
    return `${stateRev}:${start.toString('latin1')}\u0000${end.toString('latin1')}`;
  }

  /** The count of [start, end) at the state after revision stateRev, if a previous page told it. */
  get(stateRev: number, start: Buffer, end: Buffer): number | undefined {
    return this.counts.get(PageCounts.id(stateRev, start, end));
  }

  /** After a page of `returned` keys in key order ending at `lastKey`, of a range holding `count`. */
  rememberNext(stateRev: number, lastKey: Buffer, end: Buffer, count: number, returned: number): void {
    this.counts.set(PageCounts.id(stateRev, Buffer.concat([lastKey, SUCCESSOR]), end), count - returned);
  }
}
