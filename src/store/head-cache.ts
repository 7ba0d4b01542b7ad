// The latest state of recently used keys of a leaf, kept by a node that makes every write of
// that leaf (the sole writer, as for recent-events.ts), so a get at the head needs no database
// read. Commits overwrite the entries of the keys they wrote before their revision is resolved;
// database reads fill in other keys only when no later commit could have been missed. Anything
// that breaks the sole-writer premise (a commit of unknown outcome) turns the cache off.
import { LRUCache } from 'lru-cache';
import { EventType, type KeyValue, type MvccEvent } from './types.ts';

const MAX_BYTES = 64 * 1024 * 1024;

interface Entry {
  /** The key's latest state; null when it does not exist. */
  kv: KeyValue | null;
  /** The state holds from this revision on (exact for commits, an upper bound for reads). */
  since: number;
}

export class HeadCache {
  private readonly entries: LRUCache<string, Entry>;
  /** Highest revision whose writes were applied here. */
  private applied: number;
  private enabled = true;

  /** `head`: the leaf's highest revision when this process started writing it. */
  constructor(head: number, maxBytes = MAX_BYTES) {
    this.applied = head;
    this.entries = new LRUCache<string, Entry>({
      maxSize: maxBytes,
      sizeCalculation: (e, key) => 96 + key.length + (e.kv ? e.kv.value.length : 0),
    });
  }

  /** The writes of a committed revision (called before the revision is resolved). */
  apply(rev: number, events: readonly MvccEvent[]): void {
    if (!this.enabled) return;
    for (const e of events) this.entries.set(e.kv.key.toString('latin1'), { kv: e.type === EventType.PUT ? e.kv : null, since: rev });
    if (rev > this.applied) this.applied = rev;
  }

  /**
   * The key's state at `rev`, where every revision <= rev of the leaf is resolved; undefined
   * when the database must answer (not cached, or changed after rev).
   */
  at(key: Buffer, rev: number): Entry | undefined {
    if (!this.enabled) return undefined;
    const e = this.entries.get(key.toString('latin1'));
    return e && e.since <= rev ? e : undefined;
  }

  /** The key's latest committed state, if cached (null: absent). */
  latest(key: Buffer): KeyValue | null | undefined {
    return this.at(key, Number.MAX_SAFE_INTEGER)?.kv;
  }

  /**
   * What a database read found for a key (null: absent) in a snapshot whose highest revision was
   * `head`. Kept only if no commit after `head` was applied here: such a commit may have written
   * this key and been evicted since, and the read's answer would then be stale.
   */
  remember(key: Buffer, kv: KeyValue | null, head: number): void {
    if (!this.enabled || this.applied > head) return;
    this.entries.set(key.toString('latin1'), { kv, since: kv ? kv.mod_revision : head });
  }

  /** From now on every read goes to the database. */
  disable(): void {
    this.enabled = false;
    this.entries.clear();
  }
}
