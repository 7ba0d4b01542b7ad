// etcdserverpb.Watch: one WatchStream per gRPC stream, multiplexing many watches. Requests:
// create, cancel, progress. Responses go through one bounded send queue; a watcher whose
// responses pile up past the bound is cancelled with a reason instead of growing memory.
import type * as grpc from '@grpc/grpc-js';
import { hopsOf, TreeMetadata } from '../child/call-context.ts';
import type { Router } from '../router/router.ts';
import type { MvccEvent } from '../store/types.ts';
import { intervalOf } from '../store/types.ts';
import { log } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';
import { endRpcSpan, startStreamSpan } from '../telemetry/tracing.ts';
import { Errors, toGrpcError, WatchCancelReasons } from './errors.ts';
import type { HeaderFn } from './header.ts';
import type { StreamTracker } from './lease-service.ts';
import { Watcher, type WatcherSink } from '../watch/watcher.ts';

/** etcd's clientv3.InvalidWatchID: progress responses for the whole stream and failed creates. */
const STREAM_WATCH_ID = -1;

export interface WatchServiceOptions {
  progressNotifyIntervalMs: number;
  maxRequestBytes: number;
  /** Responses a single watcher may have queued before it is cancelled as too slow. */
  maxQueuedPerWatcher: number;
}

interface WatchCreateRequest {
  key: Buffer;
  range_end: Buffer;
  start_revision: number;
  progress_notify: boolean;
  filters: number[];
  prev_kv: boolean;
  watch_id: number;
  fragment: boolean;
}

interface WatchRequest {
  request_union?: 'create_request' | 'cancel_request' | 'progress_request';
  create_request?: WatchCreateRequest;
  cancel_request?: { watch_id: number };
}

interface Outgoing {
  message: object;
  watchId: number | null;
}

export function watchService(router: Router, header: HeaderFn, options: WatchServiceOptions, track: StreamTracker): grpc.UntypedServiceImplementation {
  return {
    Watch: (call: grpc.ServerDuplexStream<WatchRequest, object>) => {
      new WatchStream(call, router, header, options, track);
    },
  };
}

class WatchStream implements WatcherSink {
  private readonly watchers = new Map<number, Watcher>();
  private nextId = 0;
  private readonly queue: Outgoing[] = [];
  private readonly queuedPerWatcher = new Map<number, number>();
  private blocked = false;
  /**
   * A WatchProgressRequest waiting to be answered: with the revision that was current when it
   * arrived, once every watcher of the stream has reached it (etcd answers with its current
   * revision, all watchers being synced; a feed from a child may still be a step behind).
   */
  private progressRequested: { atLeast: number } | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private closed = false;
  private requests: Promise<void> = Promise.resolve();
  private readonly untrack: () => void;
  private readonly span;
  /** A parent node's upstream watch: progress goes out whenever a watch's revision advances. */
  private readonly eager: boolean;
  private readonly advancedWatchers = new Set<Watcher>();
  /** Nodes this stream's watches crossed before this one (tree metadata). */
  private hops = 0;

  constructor(
    private readonly call: grpc.ServerDuplexStream<WatchRequest, object>,
    private readonly router: Router,
    private readonly header: HeaderFn,
    private readonly options: WatchServiceOptions,
    track: StreamTracker,
  ) {
    this.span = startStreamSpan('/etcdserverpb.Watch/Watch', call.metadata).span;
    this.eager = call.metadata.get(TreeMetadata.eagerProgress).length > 0;
    metrics.watchStreamsGauge.inc();
    this.untrack = track(() => this.shutdown());
    // Requests of one stream are handled in order (clients match created responses to their
    // create requests by order).
    call.on('data', (req: WatchRequest) => {
      this.requests = this.requests
        .then(() => this.onRequest(req))
        .catch((err) => {
          log.error({ err }, 'watch request failed unexpectedly');
          this.close(err);
        });
    });
    call.on('end', () => this.close());
    call.on('error', () => this.close());
    call.on('close', () => this.close());
    try {
      this.hops = hopsOf(call.metadata);
    } catch (err) {
      this.close(err);
    }
  }

  private async onRequest(req: WatchRequest): Promise<void> {
    if (this.closed) return;
    switch (req.request_union) {
      case 'create_request':
        return this.create(req.create_request!);
      case 'cancel_request':
        return this.cancel(req.cancel_request!.watch_id);
      case 'progress_request':
        this.progressRequested = { atLeast: await this.router.currentRevision() };
        this.maybeSendStreamProgress();
        return;
    }
  }

  private async create(cr: WatchCreateRequest): Promise<void> {
    const key = cr.key.length === 0 ? Buffer.from([0]) : cr.key;
    const interval = intervalOf(key, cr.range_end);
    const fail = (reason: string, rev: number) =>
      this.enqueue({ header: this.header(rev), watch_id: STREAM_WATCH_ID, created: true, canceled: true, cancel_reason: reason }, null);
    if (interval.end !== null && interval.end.length > 0 && Buffer.compare(key, interval.end) >= 0) {
      return fail(WatchCancelReasons.emptyRange, await this.router.watermarkFor(key, Buffer.alloc(0)));
    }
    let feed;
    try {
      feed = await this.router.feedFor(key, cr.range_end, this.hops);
    } catch (err) {
      // A child under the range is down or refuses the watch: this watch fails, the stream lives on.
      return fail(`etcd-tree: ${(err as Error).message}`, 0);
    }
    // Like etcd's "current revision": everything up to it is resolved in these leaves (the
    // feed may not have read it yet; the watcher then skips what is below its start).
    const rev = await this.router.watermarkFor(key, cr.range_end);
    let id = cr.watch_id;
    if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      return fail(WatchCancelReasons.duplicateId, rev);
    }
    const watcher = new Watcher(
      {
        id,
        interval,
        startRev: cr.start_revision > 0 ? cr.start_revision : rev + 1,
        prevKv: cr.prev_kv,
        progressNotify: cr.progress_notify,
        fragment: cr.fragment,
        filters: cr.filters ?? [],
      },
      feed,
      this,
    );
    this.watchers.set(id, watcher);
    metrics.watchersGauge.inc();
    this.enqueue({ header: this.header(rev), watch_id: id, created: true }, null);
    if (cr.progress_notify) this.startTicker();
    // Catching up may take a while; the stream's next requests need not wait for it.
    watcher.start().catch((err) => {
      log.warn({ err, watchId: id }, 'watch could not catch up from history; cancelling it');
      this.removeWatcher(watcher);
      this.enqueue({ header: this.header(0), watch_id: id, canceled: true, cancel_reason: `etcd-tree: ${(err as Error).message}` }, null);
    });
  }

  private cancel(id: number): void {
    const w = this.watchers.get(id);
    if (!w) return; // etcd answers nothing for an unknown watch ID
    this.removeWatcher(w);
    this.enqueue({ header: this.header(w.syncedRev), watch_id: id, canceled: true }, null);
  }

  private removeWatcher(w: Watcher): void {
    w.close();
    if (this.watchers.delete(w.id)) metrics.watchersGauge.dec();
    this.queuedPerWatcher.delete(w.id);
  }

  // --- WatcherSink ---

  events(w: Watcher, headerRev: number, events: MvccEvent[]): void {
    if (this.progressRequested) queueMicrotask(() => this.maybeSendStreamProgress());
    const base = { header: this.header(headerRev), watch_id: w.id };
    if (w.options.fragment) {
      for (const part of fragments(events, this.options.maxRequestBytes)) {
        this.enqueue({ ...base, events: part.events, fragment: part.more }, w.id);
      }
    } else {
      this.enqueue({ ...base, events }, w.id);
    }
  }

  progress(w: Watcher, rev: number): void {
    this.enqueue({ header: this.header(rev), watch_id: w.id }, w.id);
  }

  compacted(w: Watcher, compactRev: number): void {
    this.enqueue({ header: this.header(0), watch_id: w.id, canceled: true, compact_revision: compactRev }, null);
    this.removeWatcher(w);
  }

  synced(w: Watcher): void {
    this.maybeSendStreamProgress();
    if (this.eager) this.advanced(w);
  }

  /** Eager progress (tree-internal): coalesced, one response per advanced watcher per turn. */
  advanced(w: Watcher): void {
    this.maybeSendStreamProgress();
    if (!this.eager) return;
    if (this.advancedWatchers.size === 0) setImmediate(() => this.sendAdvanced());
    this.advancedWatchers.add(w);
  }

  private sendAdvanced(): void {
    for (const w of this.advancedWatchers) {
      if (!w.live || w.closed || w.syncedRev <= w.lastSentRev) continue;
      w.lastSentRev = w.syncedRev;
      this.progress(w, w.syncedRev);
    }
    this.advancedWatchers.clear();
  }

  // --- progress ---

  /** A WatchProgressRequest is answered once every watcher of the stream is caught up. */
  private maybeSendStreamProgress(): void {
    if (!this.progressRequested) return;
    let rev = Infinity;
    for (const w of this.watchers.values()) {
      if (!w.live || w.syncedRev < this.progressRequested.atLeast) return;
      rev = Math.min(rev, w.syncedRev);
    }
    this.progressRequested = null;
    if (rev === Infinity) return; // no watchers: etcd sends nothing
    this.enqueue({ header: this.header(rev), watch_id: STREAM_WATCH_ID }, null);
  }

  private startTicker(): void {
    if (this.ticker) return;
    this.ticker = setInterval(() => {
      for (const w of this.watchers.values()) {
        if (!w.options.progressNotify || !w.live) continue;
        if (!w.sentSinceTick) this.progress(w, w.syncedRev);
        w.sentSinceTick = false;
      }
    }, this.options.progressNotifyIntervalMs);
    this.ticker.unref();
  }

  // --- sending ---

  private enqueue(message: object, watchId: number | null): void {
    if (this.closed) return;
    if (watchId !== null) {
      const n = (this.queuedPerWatcher.get(watchId) ?? 0) + 1;
      if (n > this.options.maxQueuedPerWatcher) return this.cancelSlow(watchId);
      this.queuedPerWatcher.set(watchId, n);
    }
    this.queue.push({ message, watchId });
    this.flush();
  }

  private cancelSlow(watchId: number): void {
    const w = this.watchers.get(watchId);
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].watchId === watchId) this.queue.splice(i, 1);
    if (w) this.removeWatcher(w);
    log.warn({ watchId }, 'watcher cancelled: its client reads too slowly');
    this.enqueue({ header: this.header(w?.syncedRev ?? 0), watch_id: watchId, canceled: true, cancel_reason: WatchCancelReasons.slowWatcher }, null);
  }

  private flush(): void {
    while (!this.blocked && this.queue.length > 0 && !this.closed) {
      const out = this.queue.shift()!;
      if (out.watchId !== null) {
        const n = (this.queuedPerWatcher.get(out.watchId) ?? 1) - 1;
        if (this.queuedPerWatcher.has(out.watchId)) this.queuedPerWatcher.set(out.watchId, n);
      }
      if (!this.call.write(out.message)) {
        this.blocked = true;
        this.call.once('drain', () => {
          this.blocked = false;
          this.flush();
        });
      }
    }
  }

  // --- lifecycle ---

  /**
   * Node shutdown: the stream ends with etcd's UNAVAILABLE "server stopped", on which etcd
   * clients (kube-apiserver's too) re-establish their watches on another endpoint.
   */
  private shutdown(): void {
    if (this.closed) return;
    this.close(Errors.stopped());
  }

  private close(err?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watchers.values()]) this.removeWatcher(w);
    if (this.ticker) clearInterval(this.ticker);
    this.queue.length = 0;
    this.untrack();
    metrics.watchStreamsGauge.dec();
    endRpcSpan(this.span, err);
    if (err && !this.call.writableEnded) this.call.emit('error', toGrpcError(err));
  }
}

/** Splits events like etcd's sendFragments: parts under the size limit, one event at least. */
function fragments(events: MvccEvent[], limit: number): Array<{ events: MvccEvent[]; more: boolean }> {
  const size = (e: MvccEvent) => e.kv.key.length + e.kv.value.length + (e.prev_kv ? e.prev_kv.key.length + e.prev_kv.value.length : 0) + 48;
  let total = 0;
  for (const e of events) total += size(e);
  if (total < limit || events.length < 2) return [{ events, more: false }];
  const parts: Array<{ events: MvccEvent[]; more: boolean }> = [];
  let cur: MvccEvent[] = [];
  let curSize = 0;
  for (const e of events) {
    if (cur.length > 0 && curSize + size(e) >= limit) {
      parts.push({ events: cur, more: true });
      cur = [];
      curSize = 0;
    }
    cur.push(e);
    curSize += size(e);
  }
  parts.push({ events: cur, more: false });
  return parts;
}
