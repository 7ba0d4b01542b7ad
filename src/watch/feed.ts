// A feed is an ordered stream of revisions for a set of leaves: one per leaf (leaf-feed.ts),
// or later a revision-ordered merge of several. Watchers attach to a feed once they have
// caught up with it from history.
import type { EventsPage, RevisionEvents } from '../store/leaf-store.ts';

export interface FeedListener {
  /** Revisions in ascending order, all > the previous call's; whole revisions only. */
  onRevisions(batch: RevisionEvents[]): void;
  /** Everything <= rev has been delivered: a progress point. */
  onProgress(rev: number): void;
  /**
   * The feed cannot continue exactly: history it still had to deliver is compacted (a child
   * node's, while the parent was disconnected from it). Listeners end their watches the way
   * etcd does for a compacted start (compact_revision); the feed drops them.
   */
  onCompacted?(compactRevision: number): void;
}

export interface Feed {
  /** Every event with revision <= position has been emitted to the listeners. */
  readonly position: number;
  subscribe(listener: FeedListener): () => void;
  /** History for catch-up: events with after < rev <= upTo (whole revisions, about `limit`). */
  history(after: number, upTo: number, limit: number): Promise<EventsPage>;
  /** Revisions below this are compacted. */
  compactedRevision(): number;
  /** Resolves once `position` is meaningful (the feed has started). */
  ready(): Promise<void>;
}
