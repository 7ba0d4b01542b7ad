import { status as Code } from '@grpc/grpc-js';
// The MVCC leaf store, shared by every dialect: SQL from sql-text.ts, database specifics from
// the Dialect. Writes go through group commit on single-writer databases. Every dialect call
// goes through guard(): a database that is down or unreachable answers UNAVAILABLE naming the
// leaf, never an unknown error, and never an unhandled rejection. With span recording on, the
// store's SQL shows in the request's trace (traced-dialect.ts).
import { Errors, EtcdError } from '../etcd/errors.ts';
import type { RevisionAllocator } from '../revision/allocator.ts';
import { log } from '../telemetry/logger.ts';
import type { Dialect, ReadTx, WriteTx } from './dialect.ts';
import { GroupCommitQueue } from './group-commit.ts';
import type { EventsPage, LeafStore, LeaseRecord, RevisionEvents, TxnContext } from './leaf-store.ts';
import { PageCounts } from './page-counts.ts';
import { readRange, readRangeAtHead, type RangeRows } from './range-reader.ts';
import { HeadCache } from './head-cache.ts';
import { RecentEvents } from './recent-events.ts';
import { ROW_DELETE, SCHEMA_VERSION, type SqlText } from './sql-text.ts';
import { TracedDialect } from './traced-dialect.ts';
import { TxnRevision } from './txn-revision.ts';
import { executeTxn, type ExecutedTxn, type TxnEnv, type TxnOutcome } from './txn-executor.ts';
import { EventType, type KeyValue, type MvccEvent, type PutRequest, type RangeRequest, type TxnRequest } from './types.ts';

export interface MvccStoreOptions {
  /** Table-name prefix, so several leaves can share one database. */
  tablePrefix?: string;
  /** Revisions per physical compaction batch (each batch is one short write transaction). */
  compactionBatch?: number;
}

const EMPTY = Buffer.alloc(0);

export class MvccStore implements LeafStore {
  private readonly sql: SqlText;
  private readonly writes: GroupCommitQueue | null;
  /** Counts of list pages, so the next page needs no COUNT query (page-counts.ts). */
  private readonly pageCounts = new PageCounts();
  /** The leaf's generation as read inside each open write transaction. */
  private readonly generationIn = new WeakMap<WriteTx, number>();
  /** Revisions below this are compacted. Only grows. */
  private compacted = 0;
  /**
   * The highest head revision this store has seen (its commits, heads read). A read at or above
   * it is likely still at the head, so it tries the one-statement head read first.
   */
  private newestHead = 0;
  /** How far physical compaction has gone (rows below it are cleaned). */
  private physicallyCompacted = 0;
  private compaction: Promise<void> = Promise.resolve();
  private readonly prefix: string;
  /** The dialect, with its SQL traced (traced-dialect.ts). */
  private readonly dialect: Dialect;
  /**
   * Kept beside the database while this node makes every write of the leaf (a sole writer):
   * the latest commits' events (recent-events.ts) and the latest state of recently used keys
   * (head-cache.ts). Null while off: a commit failed (its outcome may be unknown) and the
   * revisions in doubt are not settled yet.
   */
  private recent: RecentEvents | null = null;
  private heads: HeadCache | null = null;
  /** Commit failures so far: a rebuild of the caches queued before the latest one is void. */
  private commitFailures = 0;
  /** Revisions whose commit outcome is being settled (settleUncertain). */
  private unsettled = 0;
  /** Keys each open write transaction wrote: the head cache no longer answers for them there. */
  private readonly touchedIn = new WeakMap<WriteTx, Set<string>>();

  constructor(
    readonly name: string,
    dialect: Dialect,
    private readonly allocator: RevisionAllocator,
    private readonly options: MvccStoreOptions = {},
  ) {
    this.dialect = new TracedDialect(dialect, name);
    this.prefix = options.tablePrefix ?? '';
    this.sql = this.dialect.statements(this.prefix);
    this.writes = dialect.capabilities.singleWriter ? new GroupCommitQueue(this.dialect, dialect.capabilities.maxGroupCommit, () => this.dropCaches(), this.allocator.soleWriter) : null;
  }

  async open(): Promise<void> {
    await this.guard(() => this.dialect.open(this.prefix));
    await this.guard(() => this.dialect.writeTx(async (tx) => {
      if (!this.dialect.capabilities.schemaOnOpen) for (const stmt of this.dialect.schemaStatements(this.prefix)) await tx.run(stmt);
      const version = await this.meta(tx, 'schema_version');
      if (version === undefined) await tx.run(this.sql.metaInsert, ['schema_version', SCHEMA_VERSION]);
      else if (version > SCHEMA_VERSION) {
        throw new Error(`leaf ${this.name}: schema version ${version} is newer than this etcd-tree (${SCHEMA_VERSION}); upgrade etcd-tree`);
      }
      const compacted = await this.meta(tx, 'compact_rev');
      if (compacted === undefined) {
        await tx.run(this.sql.metaInsert, ['compact_rev', 0]);
        await tx.run(this.sql.metaInsert, ['compact_done', 0]);
      }
      // Revision counter generation (DESIGN.md 4): 0 until a Redis counter is established.
      if ((await this.meta(tx, 'generation')) === undefined) await tx.run(this.sql.metaInsert, ['generation', 0]);
      this.compacted = compacted ?? 0;
      this.physicallyCompacted = (await this.meta(tx, 'compact_done')) ?? 0;
    }));
    if (this.keepsCaches()) this.installCaches(await this.headRevision());
    // Finish a physical compaction that a stop interrupted (a failure is retried by the next one).
    if (this.physicallyCompacted < this.compacted) this.compaction = this.compactPhysically(this.compacted).catch(() => undefined);
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    await this.compaction.catch(() => undefined);
    await this.writes?.drain();
    await this.guard(() => this.dialect.close());
  }

  /** Runs a dialect call; the database being down or unreachable becomes UNAVAILABLE. */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (this.dialect.isUnavailable?.(err)) throw Errors.unavailable(`leaf ${this.name} is unavailable: ${shortReason(err)}`);
      throw err;
    }
  }

  private read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    return this.guard(() => this.dialect.readTx(fn));
  }

  private async meta(tx: { get: WriteTx['get'] }, name: string): Promise<number | undefined> {
    const row = await tx.get<{ value: number }>(this.sql.metaGet, [name]);
    return row === undefined ? undefined : Number(row.value);
  }

  async headRevision(): Promise<number> {
    return this.read((tx) => this.headIn(tx));
  }

  /** The leaf's highest revision as a transaction sees it. */
  private async headIn(tx: ReadTx): Promise<number> {
    return this.sawHead(Number((await tx.get<{ rev: number | null }>(this.sql.headRev))?.rev ?? 0));
  }

  private sawHead(head: number): number {
    if (head > this.newestHead) this.newestHead = head;
    return head;
  }

  compactedRevision(): number {
    return this.compacted;
  }

  async range(req: RangeRequest, rev: number): Promise<RangeRows> {
    // Taken once: a failed commit may drop the cache while this read waits (it then ignores remember()).
    const heads = this.heads && isHeadGet(req) ? this.heads : null;
    const known = heads?.at(req.key, rev);
    if (known) return answerGet(req, known.kv);
    const once = this.dialect.readOnce?.bind(this.dialect);
    // An explicit revision below the newest head seen reads history: no head-only attempt. At or
    // above it (the next pages of a list, at the first page's revision) it is likely exact.
    if (once && (req.revision === 0 || req.revision >= this.newestHead)) {
      const fast = await this.guard(() => readRangeAtHead(once, this.sql, req, rev, this.pageCounts));
      if (fast) {
        const { head, ...rows } = fast;
        if (head !== undefined) this.sawHead(head);
        if (heads && head !== undefined && !req.keys_only && !req.count_only) heads.remember(req.key, rows.kvs[0] ?? null, head);
        return rows;
      }
    }
    return this.read(async (tx) => {
      const head = await this.headIn(tx);
      // History may have been compacted by another node since this one last looked.
      if (rev < head && rev < (await this.compactedIn(tx))) throw Errors.compacted();
      return readRange(tx, this.sql, req, rev, rev >= head, this.pageCounts);
    });
  }

  /** The compacted revision as the snapshot sees it (other nodes compact shared leaves too). */
  private async compactedIn(tx: ReadTx): Promise<number> {
    const rev = (await this.meta(tx, 'compact_rev')) ?? 0;
    if (rev > this.compacted) this.compacted = rev;
    return this.compacted;
  }

  /** `committed` runs right after the commit, before any later write transaction starts (group-commit.ts). */
  private write<T>(fn: (tx: WriteTx) => Promise<T>, committed?: (value: T) => void, prepare?: () => void): Promise<T> {
    return this.guard(() => (this.writes ? this.writes.submit(fn, committed, prepare) : this.dialect.writeTx(fn)));
  }

  /** A commit failed, maybe after it landed: the caches may miss it. Off until it is settled. */
  private dropCaches(): void {
    this.commitFailures++;
    this.recent?.disable();
    this.heads?.disable();
    this.recent = null;
    this.heads = null;
    this.scheduleRebuild();
  }

  private rebuilding = false;

  /** The premise of the caches: every write of the leaf is this node's, through its commit queue. */
  private keepsCaches(): boolean {
    return this.allocator.soleWriter && this.writes !== null;
  }

  /** Caches that know every revision above `head` and nothing below it. */
  private installCaches(head: number): void {
    this.recent = new RecentEvents(head);
    this.heads = new HeadCache(head);
  }

  /**
   * Caches from scratch, once every revision in doubt is settled, retried until the leaf
   * answers. The leaf's head is read inside a write transaction and the caches are installed at
   * its commit, so no commit falls between the two (one before is in the log below the floor,
   * one after reaches them); a commit failure meanwhile voids the attempt.
   */
  private scheduleRebuild(): void {
    if (this.rebuilding || !this.keepsCaches()) return;
    this.rebuilding = true;
    void (async () => {
      for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 5000)) {
        await new Promise((r) => setTimeout(r, delay).unref());
        if (this.closed || this.unsettled > 0) continue;
        const failures = this.commitFailures;
        let head = 0;
        let installed = false;
        try {
          await this.write(
            async (tx) => {
              head = await this.headIn(tx);
            },
            () => {
              if (failures !== this.commitFailures || this.unsettled > 0) return;
              this.installCaches(head);
              installed = true;
            },
          );
        } catch {
          continue; // the leaf is still down
        }
        if (installed) break;
      }
      this.rebuilding = false;
    })();
  }

  /** What the txn executor may take from the head cache in this transaction (TxnEnv.known/wrote). */
  private knownKeys(tx: WriteTx): Pick<TxnEnv, 'known' | 'wrote'> {
    const heads = this.heads;
    if (!heads) return {};
    const touched = this.touchedIn.get(tx) ?? new Set<string>();
    this.touchedIn.set(tx, touched);
    return {
      known: (key) => (touched.has(key.toString('latin1')) ? undefined : heads.latest(key)),
      wrote: (key) => void touched.add(key.toString('latin1')),
    };
  }

  txn(req: TxnRequest, ctx: TxnContext): Promise<TxnOutcome> {
    return this.writeTxn(ctx, async () => req, !this.allocator.soleWriter && surelyWrites(req, ctx));
  }

  /** Deletes every key attached to the lease, in one revision (the lease's revocation). */
  async revokeLeaseKeys(id: number): Promise<number> {
    const outcome = await this.writeTxn({ leaseExists: () => false }, async (tx) => {
      const keys = await tx.all<{ k: Buffer }>(this.sql.keysOfLease, [id]);
      return {
        compare: [],
        success: keys.map(({ k: key }) => ({ request: 'request_delete_range' as const, request_delete_range: { key, range_end: EMPTY, prev_kv: false } })),
        failure: [],
      };
    });
    return outcome.rev;
  }

  /**
   * Runs a txn (built inside the write transaction) with its revision allocated and resolved.
   * @param early the txn will surely write: its revision is asked for with its group's others,
   * once the group holds the leaf's write lock (group-commit.ts prepare), not after the txn's
   * own work (a Redis round trip per txn of the group, one after another)
   */
  private async writeTxn(ctx: TxnContext, build: (tx: WriteTx) => Promise<TxnRequest>, early = false): Promise<TxnOutcome> {
    const revision = new TxnRevision(this.allocator, this.name);
    let settled = true;
    try {
      // May run twice: group-commit.ts redoes a group whose optimistic attempt failed (nothing of
      // it committed); the second run keeps the revision of the first.
      const execute = async (tx: WriteTx) => {
        const req = await build(tx);
        return executeTxn(
          {
            ...this.knownKeys(tx),
            tx,
            sql: this.sql,
            beginRev: () => revision.view(),
            compactedRev: this.compacted,
            leaseExists: ctx.leaseExists,
            allocate: async () => {
              const allocation = await revision.take();
              if (this.allocator.checksGeneration) await this.checkGeneration(tx, allocation.generation);
              return allocation.rev;
            },
          },
          req,
        );
      };
      // Recorded at the commit: before the revision is resolved (so before any feed asks for it)
      // and before any later transaction reads the head cache.
      const record = (done: ExecutedTxn) => {
        if (done.rev === 0) return;
        this.sawHead(done.rev);
        this.recent?.add(done.rev, done.events);
        this.heads?.apply(done.rev, done.events);
      };
      const outcome = await this.write(execute, record, early ? () => revision.askEarly() : undefined);
      return { response: outcome.response, rev: outcome.rev };
    } catch (err) {
      const rev = revision.rev;
      // The revision's log slot was taken by a gap row: a fencer presumed this writer dead.
      if (rev !== 0 && this.dialect.isDuplicate(err)) throw Errors.unavailable(`leaf ${this.name}: revision ${rev} was fenced before it committed; retry`);
      // Lost the database mid-transaction (maybe mid-COMMIT): whether it committed is unknown.
      if (rev !== 0 && err instanceof EtcdError && err.code === Code.UNAVAILABLE) {
        settled = false;
        void this.settleUncertain(rev);
      }
      throw err;
    } finally {
      // Committed or rolled back, the revision is no longer pending.
      if (revision.rev !== 0 && settled) this.allocator.resolve(this.name, revision.rev);
      revision.releaseUnused();
    }
  }

  /**
   * A revision whose commit outcome is unknown stays pending (watches and reads wait) until the
   * leaf answers: a gap row at its slot either lands (it never committed) or collides with the
   * committed row. Only then is it resolved, so a commit that surfaces late is never skipped.
   */
  private async settleUncertain(rev: number): Promise<void> {
    this.unsettled++;
    try {
      for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 5000)) {
        try {
          const gap = await this.fence(rev);
          log.warn({ leaf: this.name, rev, committed: !gap }, 'settled a revision whose commit outcome was unknown');
          this.allocator.resolve(this.name, rev);
          return;
        } catch {
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    } finally {
      this.unsettled--;
    }
  }

  /**
   * Inside the write transaction: the revision's generation must be the leaf's. Otherwise the
   * counter was re-established (Redis lost its data) after this revision was allocated, and
   * committing it could surface behind watchers that moved on: refuse, the client retries.
   */
  private async checkGeneration(tx: WriteTx, generation: number): Promise<void> {
    // Read once per database transaction: it holds the leaf's write lock, which setGeneration
    // needs too, so the value cannot change under it.
    let mine = this.generationIn.get(tx);
    if (mine === undefined) this.generationIn.set(tx, (mine = (await this.meta(tx, 'generation')) ?? 0));
    if (mine !== generation) throw Errors.unavailable(`leaf ${this.name}: revision generation changed (${generation} -> ${mine}); retry`);
  }

  /** The leaf's generation (0 until a Redis counter was established). */
  async generation(): Promise<number> {
    return this.dialect.readTx(async (tx) => Number((await tx.get<{ value: number }>(this.sql.metaGet, ['generation']))?.value ?? 0));
  }

  /** Records a newly established counter generation (before it is published in Redis). */
  async setGeneration(generation: number): Promise<void> {
    await this.write((tx) => tx.run(this.sql.metaUpdate, [generation, 'generation']));
  }

  /**
   * Fences a pending revision whose writer is presumed dead: a gap row takes the revision's
   * first log slot, so exactly one of {gap row, late writer} commits (the slot is unique).
   * Returns false when the writer had already committed it.
   */
  async fence(rev: number): Promise<boolean> {
    try {
      await this.write((tx) => tx.run(this.sql.insertGap, [rev, EMPTY, EMPTY]));
      return true;
    } catch (err) {
      if (this.dialect.isDuplicate(err)) return false;
      throw err;
    }
  }

  async compact(rev: number, physical: boolean): Promise<void> {
    if (rev > this.compacted) {
      await this.write(async (tx) => {
        await tx.run(this.sql.metaUpdate, [rev, 'compact_rev']);
      });
      this.compacted = rev;
      const run = this.compaction.then(() => this.compactPhysically(rev));
      // The chain itself never rejects: nobody may be waiting (physical = false), and a failed
      // batch is redone by the next compaction, which starts from physicallyCompacted.
      this.compaction = run.catch(() => undefined);
      if (physical) await run;
      return;
    }
    if (physical) await this.compaction;
  }

  /** Deletes superseded history below `upTo` in short batches so writers are never held up. */
  private async compactPhysically(upTo: number): Promise<void> {
    const step = this.options.compactionBatch ?? 1000;
    let lo = this.physicallyCompacted;
    while (lo < upTo) {
      const hi = Math.min(lo + step, upTo);
      await this.write(async (tx) => {
        await tx.run(this.sql.compactSuperseded, [lo, hi]);
        await tx.run(this.sql.compactDead, [lo, hi]);
        await tx.run(this.sql.metaUpdate, [hi, 'compact_done']);
      });
      this.physicallyCompacted = lo = hi;
    }
  }

  events(after: number, upTo: number, limit: number): Promise<EventsPage> {
    // This node made every write of the leaf, so its compacted revision is the leaf's.
    if (this.recent && after + 1 >= this.compacted) {
      const page = this.recent.read(after, upTo, limit);
      if (page) return Promise.resolve(page);
    }
    return this.read(async (tx) => {
      // A watch may start at the compacted revision itself, not below it.
      const compacted = await this.compactedIn(tx);
      if (after + 1 < compacted) throw new CompactedError(compacted);
      let rows = await tx.all<any>(this.sql.events, [after, upTo, limit]);
      let complete = upTo;
      if (rows.length === limit && limit > 0) {
        // Truncated. Never split a revision: drop the last one's rows unless it is the only one.
        const lastRev = Number(rows[rows.length - 1].rev);
        const firstRev = Number(rows[0].rev);
        if (lastRev !== firstRev) {
          rows = rows.filter((r) => Number(r.rev) !== lastRev);
          complete = lastRev - 1;
        } else {
          rows = await tx.all<any>(this.sql.events, [after, lastRev, Number.MAX_SAFE_INTEGER]);
          complete = lastRev;
        }
      }
      const out: RevisionEvents[] = [];
      for (const r of rows) {
        const rev = Number(r.rev);
        if (out.length === 0 || out[out.length - 1].rev !== rev) out.push({ rev, events: [] });
        out[out.length - 1].events.push(rowToEvent(r, rev));
      }
      return { revisions: out, complete };
    });
  }

  async keysOfLease(id: number): Promise<Buffer[]> {
    return this.read(async (tx) => (await tx.all<{ k: Buffer }>(this.sql.keysOfLease, [id])).map((r) => r.k));
  }

  async listLeases(): Promise<LeaseRecord[]> {
    return this.read(async (tx) =>
      (await tx.all<{ id: number; ttl: number }>(this.sql.leaseList)).map((r) => ({ id: Number(r.id), ttl: Number(r.ttl) })),
    );
  }

  async saveLease(lease: LeaseRecord): Promise<void> {
    await this.write((tx) => tx.run(this.sql.leaseInsert, [lease.id, lease.ttl]));
  }

  async deleteLease(id: number): Promise<void> {
    await this.write((tx) => tx.run(this.sql.leaseDelete, [id]));
  }

  sizeBytes(): Promise<number> {
    return this.guard(() => this.dialect.sizeBytes());
  }

  /** Test hook: settles once queued writes and compaction are done. */
  async idle(): Promise<void> {
    await this.writes?.drain();
    await this.compaction;
  }
}

/** The error's first line, with its code, credentials in URLs masked, at most 200 characters. */
function shortReason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown } | null;
  let message = typeof e?.message === 'string' ? e.message : String(err);
  // Node reports a refused connection to several addresses as an AggregateError without message.
  if (!message && Array.isArray(e?.errors) && e.errors.length > 0) message = String((e.errors[0] as Error)?.message ?? e.errors[0]);
  let reason = message.split('\n')[0].replace(/([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi, '$1***@');
  if (typeof e?.code === 'string' && !reason.includes(e.code)) reason = `${e.code}: ${reason}`;
  return reason.length > 200 ? `${reason.slice(0, 200)}...` : reason;
}

/** A Range of one key at the head without filters: what the head cache can answer. */
function isHeadGet(req: RangeRequest): boolean {
  return req.range_end.length === 0 && req.revision === 0 && req.min_mod_revision === 0 && req.max_mod_revision === 0 && req.min_create_revision === 0 && req.max_create_revision === 0;
}

/**
 * The txn writes whatever happens: no compares (its path is success), only puts and deletes,
 * at least one put, and no put that can be refused (a missing lease or key). Its revision can
 * then be asked for before it runs without risking one it does not use.
 */
function surelyWrites(req: TxnRequest, ctx: TxnContext): boolean {
  const cannotBeRefused = (p: PutRequest) => !p.ignore_value && !p.ignore_lease && (p.lease === 0 || ctx.leaseExists(p.lease));
  return (
    req.compare.length === 0 &&
    req.success.some((op) => op.request === 'request_put') &&
    req.success.every((op) => op.request === 'request_delete_range' || (op.request === 'request_put' && !!op.request_put && cannotBeRefused(op.request_put)))
  );
}

/** The Range answer for one key in a known state (new objects: the cached one is shared). */
function answerGet(req: RangeRequest, kv: KeyValue | null): RangeRows {
  if (!kv) return { kvs: [], more: false, count: 0 };
  if (req.count_only) return { kvs: [], more: false, count: 1 };
  return { kvs: [req.keys_only ? { ...kv, value: EMPTY } : { ...kv }], more: false, count: 1 };
}

/** History asked for is gone: the watch gets etcd's compact_revision answer. */
export class CompactedError extends Error {
  constructor(readonly compactRevision: number) {
    super(`history below revision ${compactRevision} is compacted`);
  }
}

function rowToEvent(r: any, rev: number): MvccEvent {
  const prev =
    r.p_rev === null || r.p_rev === undefined
      ? null
      : { key: r.k, create_revision: Number(r.p_create_rev), mod_revision: Number(r.p_rev), version: Number(r.p_version), value: r.p_value ?? EMPTY, lease: Number(r.p_lease) };
  if (Number(r.kind) === ROW_DELETE) {
    return { type: EventType.DELETE, kv: { key: r.k, create_revision: 0, mod_revision: rev, version: 0, value: EMPTY, lease: 0 }, prev_kv: prev };
  }
  return {
    type: EventType.PUT,
    kv: { key: r.k, create_revision: Number(r.create_rev), mod_revision: rev, version: Number(r.version), value: r.value ?? EMPTY, lease: Number(r.lease) },
    prev_kv: prev,
  };
}
