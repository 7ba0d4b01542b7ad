// A watch feed served by a child node: one upstream Watch of an interval, shared by every local
// watcher of that interval (DESIGN.md 7). The child sends a progress response whenever the
// watch's revision advances (the eager-progress metadata), which is this feed's position: the
// parent merges children by it. When the stream breaks (the child restarted, a replica died)
// the feed reconnects and resumes from position + 1: no event is lost or repeated.
import * as grpc from '@grpc/grpc-js';
import type { EventsPage, RevisionEvents } from '../store/leaf-store.ts';
import { log } from '../telemetry/logger.ts';
import type { Feed, FeedListener } from '../watch/feed.ts';
import { LOCAL_CALL, TreeMetadata, childMetadata } from './call-context.ts';
import { childError, type ChildConnection, type WatchResponseMessage } from './child-connection.ts';

const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 2000;

/** Thrown by history() when the child compacted past the asked revision (watcher.ts handles it). */
export class ChildCompactedError extends Error {
  constructor(readonly compactRevision: number) {
    super(`required revision has been compacted (compact revision ${compactRevision})`);
  }
}

/** A broken upstream stream as the error a watcher or watch creation sees (the child's own code and message). */
function childStreamError(child: string, err: Error): Error {
  const code = (err as grpc.ServiceError).code;
  return typeof code === 'number' ? childError(child, err as grpc.ServiceError) : err;
}

/** Groups one response's events by revision (a response carries whole revisions, in order). */
function byRevision(events: WatchResponseMessage['events']): RevisionEvents[] {
  const out: RevisionEvents[] = [];
  for (const e of events) {
    const rev = e.kv.mod_revision;
    const ev = { type: e.type, kv: e.kv, prev_kv: e.prev_kv ?? null };
    if (out.length > 0 && out[out.length - 1].rev === rev) out[out.length - 1].events.push(ev);
    else out.push({ rev, events: [ev] });
  }
  return out;
}

interface UpstreamHandlers {
  created(rev: number): void;
  revisions(batch: RevisionEvents[], upTo: number): void;
  progress(rev: number): void;
  canceled(compactRevision: number, reason: string): void;
  broken(err: Error): void;
}

/** One upstream watch: create, then events/progress until canceled or broken. */
function openUpstream(conn: ChildConnection, key: Buffer, rangeEnd: Buffer, startRevision: number, hops: number, h: UpstreamHandlers): () => void {
  const md = childMetadata({ ...LOCAL_CALL, hops }, null);
  md.set(TreeMetadata.eagerProgress, '1');
  const stream = conn.watch(md);
  let created = false;
  let done = false;
  // Fragmented responses are joined before they count (the last part has fragment=false).
  let fragments: WatchResponseMessage['events'] = [];
  stream.on('data', (res: WatchResponseMessage) => {
    if (done) return;
    const rev = res.header?.revision ?? 0;
    if (res.canceled) {
      done = true;
      stream.cancel();
      h.canceled(res.compact_revision, res.cancel_reason);
      return;
    }
    if (res.created) {
      created = true;
      h.created(rev);
      return;
    }
    if (res.fragment) {
      fragments.push(...res.events);
      return;
    }
    const events = fragments.length > 0 ? [...fragments, ...res.events] : res.events;
    fragments = [];
    if (events.length > 0) {
      // Everything up to the header's revision is delivered with this response (etcd sends a
      // watcher's events up to the revision it read at, and so does etcd-tree's catch-up, whose
      // header can be past the last event): that, not the last event, is how far the child got.
      const batch = byRevision(events);
      h.revisions(batch, Math.max(batch[batch.length - 1].rev, rev));
    } else if (created) {
      h.progress(rev);
    }
  });
  const fail = (err: Error) => {
    if (done) return;
    done = true;
    h.broken(err);
  };
  stream.on('error', fail);
  stream.on('end', () => fail(new Error('the child ended the watch stream')));
  stream.write({ create_request: { key, range_end: rangeEnd, start_revision: startRevision, prev_kv: true, progress_notify: true } });
  return () => {
    done = true;
    stream.cancel();
  };
}

export class ChildFeed implements Feed {
  /** Invariant: every event of the interval with revision <= position went to every listener. */
  position = 0;
  private readonly listeners = new Set<FeedListener>();
  private started: Promise<void> | null = null;
  private closeUpstream: (() => void) | null = null;
  private stopped = false;
  private retryMs = RECONNECT_MIN_MS;
  /** Set until the first upstream watch is created (it fixes the starting position). */
  private onFirstCreated: (() => void) | null = null;
  private onFirstFailed: ((err: Error) => void) | null = null;

  constructor(
    private readonly conn: ChildConnection,
    private readonly key: Buffer,
    private readonly rangeEnd: Buffer,
    /** Nodes the watches it serves crossed before this one. */
    private readonly hops: number,
  ) {}

  /**
   * Resolves once the first upstream watch is created; rejects if it cannot be (the child is
   * down, refuses the watch, or the routes loop): the watch being created then fails instead of
   * waiting. Later breaks are repaired by reconnecting.
   */
  ready(): Promise<void> {
    this.started ??= new Promise<void>((resolve, reject) => {
      this.onFirstCreated = resolve;
      this.onFirstFailed = (err) => {
        this.stopped = true;
        reject(err);
      };
      this.connect();
    });
    return this.started;
  }

  subscribe(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  compactedRevision(): number {
    return 0; // the child answers a compacted start itself (history() throws)
  }

  stop(): void {
    this.stopped = true;
    this.closeUpstream?.();
  }

  /**
   * (Re)opens the upstream watch. The first time it starts at the child's current revision (the
   * created response's header); afterwards at position + 1, so the stream continues exactly.
   */
  private connect(): void {
    if (this.stopped) return;
    const startRevision = this.onFirstCreated ? 0 : this.position + 1;
    this.closeUpstream = openUpstream(this.conn, this.key, this.rangeEnd, startRevision, this.hops, {
      created: (rev) => {
        this.retryMs = RECONNECT_MIN_MS;
        if (this.onFirstCreated) {
          this.position = rev;
          this.onFirstCreated();
          this.onFirstCreated = null;
          this.onFirstFailed = null;
        }
      },
      revisions: (batch, upTo) => {
        const fresh = batch.filter((r) => r.rev > this.position);
        if (fresh.length > 0) for (const l of this.listeners) l.onRevisions(fresh);
        this.advance(upTo);
      },
      progress: (rev) => this.advance(rev),
      canceled: (compactRevision, reason) => {
        if (this.onFirstFailed) return this.onFirstFailed(new Error(`child ${this.conn.name} refused the watch: ${reason}`));
        if (compactRevision > 0) {
          // History after position is compacted (the child compacted while this feed was away):
          // it cannot resume exactly, so its watches end as etcd ends a compacted watch, and the
          // feed goes on from the compacted revision (the oldest it can still read) for the
          // watches that come next.
          log.warn({ child: this.conn.name, compactRevision, position: this.position }, 'upstream watch cannot resume: compacted; ending its watches');
          const listeners = [...this.listeners];
          this.listeners.clear();
          for (const l of listeners) l.onCompacted?.(compactRevision);
          this.position = Math.max(this.position, compactRevision - 1);
        } else {
          log.warn({ child: this.conn.name, reason, position: this.position }, 'upstream watch canceled by the child; retrying');
        }
        this.retry();
      },
      broken: (err) => {
        if (this.stopped) return;
        if (this.onFirstFailed) return this.onFirstFailed(childStreamError(this.conn.name, err));
        log.warn({ child: this.conn.name, err: err.message, position: this.position }, 'upstream watch broke; reconnecting');
        this.retry();
      },
    });
  }

  private retry(): void {
    const wait = this.retryMs;
    this.retryMs = Math.min(RECONNECT_MAX_MS, this.retryMs * 2);
    setTimeout(() => this.connect(), wait).unref();
  }

  private advance(rev: number): void {
    if (rev <= this.position) return;
    this.position = rev;
    for (const l of this.listeners) l.onProgress(rev);
  }

  /**
   * Events with after < rev <= upTo: a temporary upstream watch from after + 1, read until the
   * child reports upTo (or about `limit` events, ending at a whole revision).
   */
  history(after: number, upTo: number, limit: number): Promise<EventsPage> {
    return new Promise<EventsPage>((resolve, reject) => {
      const revisions: RevisionEvents[] = [];
      let count = 0;
      let close: () => void = () => undefined;
      let settled = false;
      const finish = (complete: number) => {
        if (settled) return;
        settled = true;
        close();
        resolve({ revisions, complete });
      };
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        close();
        reject(err);
      };
      close = openUpstream(this.conn, this.key, this.rangeEnd, after + 1, this.hops, {
        created: () => undefined,
        revisions: (batch, last) => {
          for (const r of batch) {
            if (r.rev > upTo) return finish(upTo);
            revisions.push(r);
            count += r.events.length;
          }
          if (last >= upTo) finish(upTo);
          else if (count >= limit) finish(last);
        },
        progress: (rev) => {
          if (rev >= upTo) finish(upTo);
        },
        canceled: (compactRevision, reason) => fail(compactRevision > 0 ? new ChildCompactedError(compactRevision) : new Error(`the child canceled the watch: ${reason}`)),
        broken: (err) => fail(childStreamError(this.conn.name, err)),
      });
    });
  }
}
