// The revision allocator shared by every node of a tree (DESIGN.md 4): one global counter in
// Redis, pending revisions per leaf, deadlines for fencing, a `generation` that vouches for the
// counter, and a pub/sub channel that wakes watermark waiters and watch feeds on every node.
//
// Round trips are kept low: per leaf at most one allocate call in flight (the rest is batched
// into the next, INCRBY n); resolves are sent in the background, batched; one snapshot script
// answers every concurrent watermark/current/readIndex question and every waiter at once.
import { randomUUID } from 'node:crypto';
import { log } from '../telemetry/logger.ts';
import { untraced } from '../telemetry/tracing.ts';
import type { Allocation, KnownLeaves, RevisionAllocator } from './allocator.ts';
import { RedisConnection, type RedisConnectionOptions, type RedisErrorWords } from './redis-connection.ts';
import { parseWakeMessage, RedisKeys, RevisionScripts, ScriptErrors, type RedisSnapshot } from './redis-scripts.ts';
import { ResolveQueue } from './resolve-queue.ts';
import { RevisionsUnavailable } from './revisions-unavailable.ts';
import { SerialBatcher } from './serial-batcher.ts';
import { WatermarkWaiters, watermarkOf } from './watermark-waiters.ts';

export interface RedisAllocatorOptions {
  /** e.g. redis://127.0.0.1:6379/0 (rediss:// for TLS; credentials in the URL). */
  url: string;
  /** Prefix of every key and of the wake channel; one tree per prefix. Default 'etcd-tree:'. */
  keyPrefix?: string;
  /** T: a revision pending longer than this is fenced by a node owning its leaf. Default 5000. */
  deadlineMs?: number;
  /** Safety-net poll of waiters and onAdvance listeners when no wake-up arrives. Default 200. */
  pollMs?: number;
  /** How long a call waits for Redis to (re)connect before failing UNAVAILABLE. Default 1000. */
  connectWaitMs?: number;
  /** A Redis command without a reply after this long fails UNAVAILABLE. Default 2000. */
  commandTimeoutMs?: number;
  /** readIndex/waitFor give up (UNAVAILABLE) after this long. Default 30000. */
  maxWaitMs?: number;
  /** Added to the floor when a generation is established (> any number of in-flight allocations). Default 1_000_000. */
  generationMargin?: number;
  /** TTL of the generation lock; refreshed while the leaves are written. Default 30000. */
  generationLockMs?: number;
  /** Largest batch of revisions per allocate/resolve call. Default 1000. */
  maxBatch?: number;
}

/** Calls made to Redis so far (metrics; tests check that batching batches). */
export interface RedisAllocatorStats {
  allocateCalls: number;
  allocatedRevisions: number;
  resolveCalls: number;
  snapshotCalls: number;
  /** Revisions resolved locally but not yet confirmed in Redis. */
  resolvesQueued: number;
}

/** A wake-up whose advance nobody has seen yet (a generation established, the poll). */
const NONE_KNOWN: KnownLeaves = new Set<string>();
/** Most leaves a resolve reports besides its own (each costs Redis a ZRANGE per resolve). */
const MAX_REPORTED_LEAVES = 64;

export class RedisAllocator implements RevisionAllocator {
  readonly checksGeneration = true;
  readonly soleWriter = false;
  readonly keys: RedisKeys;
  private readonly conn: RedisConnection;
  /**
   * Other nodes' wake-ups, subscribed once something here waits for a watermark (a watch feed of
   * a leaf, a read waiting for its index): a node whose targets are all child nodes never
   * receives them (every resolve in the tree would otherwise wake it). See receiveWakeUps().
   */
  private sub: RedisConnection | null = null;
  private subscribed: Promise<void> | null = null;
  /** Settles `subscribed`: at the first acknowledged subscription, or at close. */
  private wakeUpsStarted: () => void = () => undefined;
  private readonly subOptions: RedisConnectionOptions;
  private readonly scripts: RevisionScripts;
  private readonly deadlineMs: number;
  private readonly maxBatch: number;
  /** One batcher per leaf: invariant, at most one allocate call in flight per leaf. */
  private readonly allocators = new Map<string, SerialBatcher<void, Allocation>>();
  private allocatedRevisions = 0;
  private readonly resolves: ResolveQueue;
  /** Every snapshot question (watermark, current, readIndex, waiters) rides on one script call. */
  private readonly snapshots: SerialBatcher<readonly string[], RedisSnapshot>;
  private readonly waiters: WatermarkWaiters;
  /**
   * Per leaf, a watermark some snapshot with a generation proved: every revision <= it
   * allocated to the leaf is resolved. Only grows; W(S) >= min over S of it at any later time.
   */
  private readonly known = new Map<string, number>();
  private readonly listeners = new Set<(known: KnownLeaves) => void>();
  /** Names this node in its resolves' wake-ups, so it does not wake a second time for its own. */
  private readonly origin = randomUUID();
  /** Counts wake-ups; a waiter registered after a wake it may have missed re-checks at once. */
  private wakeSeq = 0;
  private evaluating = false;
  private evaluateAgain = false;
  private readonly poll: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: RedisAllocatorOptions) {
    this.keys = new RedisKeys(opts.keyPrefix ?? 'etcd-tree:');
    this.deadlineMs = opts.deadlineMs ?? 5000;
    this.maxBatch = opts.maxBatch ?? 1000;
    const errors: RedisErrorWords = {
      what: 'revision calls',
      unreachable: (reason) => RevisionsUnavailable.unreachable(reason),
      closed: () => RevisionsUnavailable.closed(),
      reply: (word) =>
        word === ScriptErrors.noGeneration ? RevisionsUnavailable.noGeneration() : word === ScriptErrors.noCounter ? RevisionsUnavailable.noCounter() : undefined,
    };
    const common = { url: opts.url, connectWaitMs: opts.connectWaitMs ?? 1000, commandTimeoutMs: opts.commandTimeoutMs ?? 2000, errors };
    this.conn = new RedisConnection({ ...common, name: 'etcd-tree-revisions' });
    this.subOptions = { ...common, name: 'etcd-tree-revisions-wake', subscriber: true };
    this.scripts = new RevisionScripts(this.conn.client, this.keys);
    this.waiters = new WatermarkWaiters(opts.maxWaitMs ?? 30_000);

    this.snapshots = new SerialBatcher(async (questions) => {
      const leaves = [...new Set(questions.flat())];
      const snap = await this.conn.run(() => this.scripts.snapshot(leaves));
      this.observe(snap);
      return questions.map(() => snap);
    });
    this.resolves = new ResolveQueue({
      maxBatch: this.maxBatch,
      send: async (groups) => {
        // Every other leaf this node knows is reported too: a leaf with nothing pending is at the
        // counter, so any resolve may move it (a feed merging it with the resolved leaf waits
        // for it).
        const others = [...this.known.keys()].filter((leaf) => !groups.has(leaf)).slice(0, MAX_REPORTED_LEAVES);
        const { snapshot, advanced } = await this.conn.run(() => this.scripts.resolve(groups, others, this.origin));
        // The answer is that snapshot (the other nodes get it with the wake-up).
        if (advanced.length > 0) this.wakeWith(snapshot);
        else this.observe(snapshot);
      },
      onError: (err, attempt) => {
        if (attempt === 1) log.warn({ err: (err as Error).message }, 'could not resolve revisions in redis; retrying (the deadline fencing is the fallback)');
      },
    });

    this.poll = setInterval(() => this.advanced(this.conn.isReady), opts.pollMs ?? 200);
    this.poll.unref();
  }

  async seed(floor: number): Promise<void> {
    await this.conn.run(() => this.scripts.seed(floor));
  }

  allocate(leaf: string): Promise<Allocation> {
    if (this.closed) return Promise.reject(RevisionsUnavailable.closed());
    let batcher = this.allocators.get(leaf);
    if (!batcher) {
      batcher = new SerialBatcher<void, Allocation>(async (reqs) => {
        const { first, generation } = await this.conn.run(() => this.scripts.allocate(leaf, reqs.length, this.deadlineMs));
        this.allocatedRevisions += reqs.length;
        return reqs.map((_, i) => ({ rev: first + i, generation }));
      }, this.maxBatch);
      this.allocators.set(leaf, batcher);
    }
    return batcher.submit();
  }

  resolve(leaf: string, rev: number): void {
    this.resolves.push(leaf, rev);
  }

  async current(): Promise<number> {
    const snap = await this.snapshot([]);
    return snap.counter;
  }

  /**
   * W(leaves). Without a generation (Redis lost its data) the pending sets are gone and the
   * counter may be re-seeded below revisions still in flight, so W is held at what this node
   * last saw vouched for by a generation: serializable reads keep working, and watch feeds
   * cannot skip past a late write of the old generation.
   */
  async watermark(leaves: readonly string[]): Promise<number> {
    const snap = await this.snapshot(leaves);
    let w = watermarkOf(snap, leaves)!;
    if (snap.generation === null) {
      for (const leaf of leaves) w = Math.min(w, this.known.get(leaf) ?? w);
    }
    return w;
  }

  async readIndex(leaves: readonly string[]): Promise<number> {
    const seq = this.wakeSeq;
    const snap = await this.snapshot(leaves);
    if (snap.generation === null) throw RevisionsUnavailable.noGeneration();
    const c = snap.counter;
    if (watermarkOf(snap, leaves)! >= c) return c;
    await this.wait(leaves, c, snap.generation, seq);
    return c;
  }

  async waitFor(leaves: readonly string[], rev: number): Promise<void> {
    if (this.knownWatermark(leaves) >= rev) return;
    const seq = this.wakeSeq;
    const snap = await this.snapshot(leaves);
    if (snap.generation !== null && watermarkOf(snap, leaves)! >= rev) return;
    await this.wait(leaves, rev, null, seq);
  }

  async expired(leaves: readonly string[]): Promise<Array<{ leaf: string; rev: number }>> {
    if (this.closed) throw RevisionsUnavailable.closed();
    if (leaves.length === 0) return [];
    return this.conn.run(() => this.scripts.expired(leaves, this.maxBatch));
  }

  async pendingCount(leaf: string): Promise<number> {
    return this.conn.run((c) => c.zcard(this.keys.pending(leaf)));
  }

  onAdvance(cb: (known: KnownLeaves) => void): () => void {
    void this.receiveWakeUps();
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** The counter's generation, or null when it is missing (then writes and linearizable reads fail). */
  async currentGeneration(): Promise<number | null> {
    const g = await this.conn.run((c) => c.get(this.keys.generation));
    return g === null ? null : Number(g);
  }

  /**
   * Re-establishes the counter after Redis lost it (DESIGN.md 4). For a node that sees the whole
   * keyspace. Under a Redis lock (one node does it; the others wait and get its answer): when
   * no generation exists, g = leafGeneration + 1; writeLeafGenerations(g) must record g in
   * every leaf's meta row; only then the counter is raised to max(counter, floor + margin) and
   * g is published, atomically. Returns the generation in force (an existing one if another
   * node established it first).
   * @param floor the highest revision in any leaf of the tree
   * @param leafGeneration the highest generation in any leaf's meta row (0 if none)
   */
  async establishGeneration(floor: number, leafGeneration: number, writeLeafGenerations: (g: number) => Promise<void>): Promise<number> {
    const lockMs = this.opts.generationLockMs ?? 30_000;
    const token = randomUUID();
    const giveUp = Date.now() + 2 * lockMs;
    for (;;) {
      const existing = await this.currentGeneration();
      if (existing !== null) return existing;
      const got = await this.conn.run((c) => c.set(this.keys.lock, token, 'PX', lockMs, 'NX'));
      if (got === 'OK') break;
      if (Date.now() > giveUp) throw new RevisionsUnavailable('timeout', 'revisions unavailable: another node holds the generation lock for too long; retry');
      await new Promise((r) => setTimeout(r, 100));
      if (this.closed) throw RevisionsUnavailable.closed();
    }
    try {
      const raced = await this.currentGeneration();
      if (raced !== null) {
        await this.conn.run(() => this.scripts.releaseLock(token));
        return raced;
      }
      const generation = Math.max(0, leafGeneration) + 1;
      const refresh = setInterval(() => void this.scripts.refreshLock(token, lockMs).catch(() => undefined), Math.max(100, lockMs / 3));
      refresh.unref();
      try {
        await writeLeafGenerations(generation);
      } finally {
        clearInterval(refresh);
      }
      const counter = await this.conn.run(() => this.scripts.establish(token, floor + (this.opts.generationMargin ?? 1_000_000), generation));
      log.info({ generation, counter, floor }, 'revision counter generation established');
      this.wake();
      return generation;
    } catch (err) {
      await this.conn.run(() => this.scripts.releaseLock(token)).catch(() => undefined);
      throw err;
    }
  }

  stats(): RedisAllocatorStats {
    let allocateCalls = 0;
    for (const b of this.allocators.values()) allocateCalls += b.calls;
    return { allocateCalls, allocatedRevisions: this.allocatedRevisions, resolveCalls: this.resolves.calls, snapshotCalls: this.snapshots.calls, resolvesQueued: this.resolves.size };
  }

  /** Sends queued resolves (up to a second, if Redis is there), fails waiters, closes both connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.poll);
    if (this.conn.isReady) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.resolves.flushed(), new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
      clearTimeout(timer);
    }
    this.resolves.stop();
    this.waiters.rejectAll(RevisionsUnavailable.closed());
    this.listeners.clear();
    this.conn.close();
    this.sub?.close();
    this.wakeUpsStarted();
  }

  /**
   * Starts receiving other nodes' wake-ups (once; until close), as waiting for a watermark does.
   * Resolves when the first subscription is acknowledged: from then on every resolve anywhere
   * wakes this node. Once closed, it resolves (there is nothing more to receive).
   */
  receiveWakeUps(): Promise<void> {
    if (this.subscribed) return this.subscribed;
    this.subscribed = new Promise<void>((resolve) => (this.wakeUpsStarted = resolve));
    if (this.closed) {
      this.wakeUpsStarted();
      return this.subscribed;
    }
    const sub = new RedisConnection(this.subOptions);
    this.sub = sub;
    sub.client.on('message', (channel: string, message: string) => {
      if (channel !== this.keys.wakeChannel) return;
      const wake = parseWakeMessage(message);
      // Our own resolves woke us when they were answered (see resolves).
      if (wake?.origin === this.origin) return;
      // Another node's resolve carries a snapshot of its leaves. Anything else: look again.
      if (wake) this.wakeWith(wake.snapshot);
      else this.wake();
    });
    // Subscribes on every (re)connection, then catches up on the wake-ups published before it
    // (the first time: before anything here waited, or between a wait's start and now) or while
    // the subscriber was away. (ioredis' own resubscription misses a connection cut before the
    // first SUBSCRIBE was acknowledged.)
    sub.client.on('ready', () => {
      sub.client.subscribe(this.keys.wakeChannel).then(
        () => {
          this.wake();
          this.wakeUpsStarted();
        },
        () => undefined, // the connection dropped again: the next 'ready' retries
      );
    });
    return this.subscribed;
  }

  /** A snapshot taken after this call started; counter missing -> UNAVAILABLE. */
  private async snapshot(leaves: readonly string[]): Promise<RedisSnapshot & { counter: number }> {
    if (this.closed) throw RevisionsUnavailable.closed();
    const snap = await this.snapshots.submit(leaves);
    if (snap.counter === null) throw RevisionsUnavailable.noCounter();
    return snap as RedisSnapshot & { counter: number };
  }

  private wait(leaves: readonly string[], rev: number, generation: number | null, seq: number): Promise<void> {
    void this.receiveWakeUps();
    const done = this.waiters.add(leaves, rev, generation);
    // A wake-up that arrived while our snapshot was on its way was not applied to us.
    if (this.wakeSeq !== seq) this.evaluate();
    return done;
  }

  /**
   * Every snapshot feeds the known watermarks and settles the waiters it answers. Returns
   * whether it vouched for its leaves' watermarks (only a counter with a generation does; see
   * watermark()).
   */
  private observe(snap: RedisSnapshot): boolean {
    const vouches = snap.counter !== null && snap.generation !== null;
    if (vouches) {
      for (const leaf of snap.lowest.keys()) {
        const w = watermarkOf(snap, [leaf])!;
        if (w > (this.known.get(leaf) ?? 0)) this.known.set(leaf, w);
      }
    }
    if (this.waiters.size > 0) this.waiters.check(snap);
    return vouches;
  }

  /** The watermark snapshots (and resolve answers) have shown for these leaves; 0 for a leaf never seen. */
  knownWatermark(leaves: readonly string[]): number {
    let w = Number.MAX_SAFE_INTEGER;
    for (const leaf of leaves) w = Math.min(w, this.known.get(leaf) ?? 0);
    return leaves.length === 0 ? 0 : w;
  }

  /** Re-checks the waiters with one fresh snapshot (coalesced: at most one pending check). */
  private evaluate(): void {
    if (this.waiters.size === 0 || this.closed) return;
    if (this.evaluating) {
      this.evaluateAgain = true;
      return;
    }
    this.evaluating = true;
    this.snapshots
      .submit(this.waiters.leaves())
      .catch((err) => this.waiters.rejectAll(err))
      .finally(() => {
        this.evaluating = false;
        if (this.evaluateAgain) {
          this.evaluateAgain = false;
          this.evaluate();
        }
      });
  }

  /**
   * A wake-up that came with a snapshot (a resolve's): the watermarks it vouches for are known
   * here at once, so feeds of its leaves need no round trip to see them; waiters it answers go.
   */
  private wakeWith(snapshot: RedisSnapshot): void {
    const vouched = this.observe(snapshot);
    this.wake(vouched ? new Set(snapshot.lowest.keys()) : NONE_KNOWN);
  }

  /** A wake-up: some watermark advanced somewhere. */
  private wake(known: KnownLeaves = NONE_KNOWN): void {
    this.wakeSeq++;
    // Shared machinery (feeds, waiters), not part of the request whose resolve woke it.
    untraced(() => this.advanced(true, known));
  }

  /**
   * Re-checks waiters and tells the listeners (watch feeds) to look again. While Redis is
   * away the poll skips the listeners: each would only fail (and log) again.
   */
  private advanced(notify = true, known: KnownLeaves = NONE_KNOWN): void {
    if (this.closed) return;
    this.evaluate();
    if (!notify) return;
    for (const cb of this.listeners) {
      try {
        cb(known);
      } catch (err) {
        log.warn({ err }, 'onAdvance listener threw');
      }
    }
  }
}
