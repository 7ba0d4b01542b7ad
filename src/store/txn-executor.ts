// Executes one etcd Txn inside a leaf's write transaction, following etcd 3.5's applier:
// compares (and nested compares) first, then checks of the chosen path, then the ops in order.
// The revision is allocated at the first real change (no revision for failed compares or for
// deletes that delete nothing), while the rows are locked.
import { Errors } from '../etcd/errors.ts';
import { comparePath } from './compare.ts';
import type { WriteTx } from './dialect.ts';
import { intervalParams, readRange, toKeyValue } from './range-reader.ts';
import { ROW_DELETE, ROW_PUT, type SqlText } from './sql-text.ts';
import {
  EventType,
  intervalOf,
  intervalIsEmpty,
  type DeleteRangeRequest,
  type KeyValue,
  type MvccEvent,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from './types.ts';

export interface TxnEnv {
  tx: WriteTx;
  sql: SqlText;
  /**
   * etcd's current revision when the txn starts (the read view's revision). Asked only when
   * needed (reads, deletes of nothing, failed compares): a plain write does not pay for it,
   * which with Redis saves a round trip.
   */
  beginRev(): Promise<number>;
  compactedRev: number;
  leaseExists(id: number): boolean;
  /** Allocates this txn's revision; called at most once. */
  allocate(): Promise<number>;
  /**
   * A single key's state as this transaction sees it, when the store knows it without asking
   * the database (head-cache.ts): null = absent, undefined = ask the database.
   */
  known?(key: Buffer): KeyValue | null | undefined;
  /** Tells the store this transaction wrote the key (from now on only the database knows it). */
  wrote?(key: Buffer): void;
}

export interface TxnOutcome {
  response: TxnResponse;
  /** The revision this txn wrote at, or 0 when it changed nothing. */
  rev: number;
}

/** The outcome as the store sees it: also the events it wrote, in log order, each with the row it replaced. */
export interface ExecutedTxn extends TxnOutcome {
  events: MvccEvent[];
}

const EMPTY = Buffer.alloc(0);

export function isTxnReadOnly(req: TxnRequest): boolean {
  const readOnly = (ops: RequestOp[]): boolean =>
    ops.every((op) =>
      op.request === 'request_put' || op.request === 'request_delete_range' ? false
      : op.request === 'request_txn' && op.request_txn ? isTxnReadOnly(op.request_txn)
      : true,
    );
  return readOnly(req.success) && readOnly(req.failure);
}

class TxnRun {
  private rev = 0;
  private seq = 0;
  private pathIndex = 0;
  readonly events: MvccEvent[] = [];

  constructor(private readonly env: TxnEnv, private readonly path: boolean[]) {}

  get writtenRev(): number {
    return this.rev;
  }

  /** The revision reads inside the txn see: the new one once something changed. */
  private begin: Promise<number> | null = null;

  beginRev(): Promise<number> {
    this.begin ??= this.env.beginRev();
    return this.begin;
  }

  private async viewRev(): Promise<number> {
    return this.rev || (await this.beginRev());
  }

  private async revision(): Promise<number> {
    if (this.rev === 0) this.rev = await this.env.allocate();
    return this.rev;
  }

  /** etcd's checkRequests over the chosen path, with one check function. */
  async check(req: TxnRequest, f: (op: RequestOp) => Promise<void>): Promise<void> {
    const walk = async (r: TxnRequest): Promise<void> => {
      const ok = this.path[this.pathIndex++];
      for (const op of ok ? r.success : r.failure) {
        if (op.request === 'request_txn' && op.request_txn) await walk(op.request_txn);
        else await f(op);
      }
    };
    this.pathIndex = 0;
    await walk(req);
  }

  async apply(req: TxnRequest): Promise<TxnResponse> {
    this.pathIndex = 0;
    return this.applyLevel(req);
  }

  private async applyLevel(req: TxnRequest): Promise<TxnResponse> {
    const succeeded = this.path[this.pathIndex++];
    const responses: ResponseOp[] = [];
    for (const op of succeeded ? req.success : req.failure) {
      switch (op.request) {
        case 'request_range':
          responses.push({ response: 'response_range', response_range: await this.range(op.request_range!) });
          break;
        case 'request_put':
          responses.push({ response: 'response_put', response_put: await this.put(op.request_put!) });
          break;
        case 'request_delete_range':
          responses.push({ response: 'response_delete_range', response_delete_range: await this.deleteRange(op.request_delete_range!) });
          break;
        case 'request_txn': {
          const inner = await this.applyLevel(op.request_txn!);
          inner.header = { revision: 0 }; // etcd never fills a nested txn's header
          responses.push({ response: 'response_txn', response_txn: inner });
          break;
        }
      }
    }
    return { header: { revision: 0 }, succeeded, responses };
  }

  /** A key's state as this txn sees it: from the head cache when it knows, else the database. */
  private async current(key: Buffer, known = this.env.known?.(key)): Promise<KeyValue | null> {
    if (known !== undefined) return known;
    const row = await this.env.tx.get<any>(this.env.sql.currentOne, [key]);
    return row ? toKeyValue(row) : null;
  }

  private async range(r: RangeRequest) {
    const view = await this.viewRev();
    const rev = r.revision > 0 ? r.revision : view;
    const atHead = rev >= view;
    const rows = await readRange(this.env.tx, this.env.sql, r, rev, atHead);
    return { header: { revision: view }, ...rows };
  }

  private async put(p: PutRequest) {
    const known = this.env.known?.(p.key);
    if (known === undefined && this.env.tx.putLater && !p.ignore_value && !p.ignore_lease) return this.putUnread(p);
    const prev = await this.current(p.key, known);
    const rev = await this.revision();
    const kv = putKv(p.key, rev, prev, p.ignore_value ? (prev?.value ?? EMPTY) : p.value, p.ignore_lease ? (prev?.lease ?? 0) : p.lease);
    const { tx, sql } = this.env;
    await tx.run(sql.insertLog, [rev, this.seq++, kv.key, kv.create_revision, kv.version, kv.lease, kv.value, ROW_PUT, prev?.mod_revision ?? 0]);
    await tx.run(sql.upsertCurrent, [kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.lease, kv.value]);
    this.env.wrote?.(kv.key);
    this.events.push({ type: EventType.PUT, kv, prev_kv: prev });
    return { header: { revision: rev }, prev_kv: p.prev_kv ? prev : null };
  }

  /**
   * A put that does not wait for the key's former state (a round trip on a server database):
   * the database derives the new rows from it (SqlText.putUnread), and the former state comes
   * back with the writes (putLater). It arrives before the write's savepoint or the
   * transaction ends, so the event and the response are complete before anything sees them
   * (at the commit).
   */
  private async putUnread(p: PutRequest) {
    const rev = await this.revision();
    const event: MvccEvent = { type: EventType.PUT, kv: putKv(p.key, rev, null, p.value, p.lease), prev_kv: null };
    const response: PutResponse = { header: { revision: rev }, prev_kv: null };
    const { tx, sql } = this.env;
    tx.putLater!(sql.putUnread, { rev, seq: this.seq++, key: p.key, lease: p.lease, value: p.value }, (row) => {
      if (!row) return;
      const prev = toKeyValue(row);
      event.kv = putKv(p.key, rev, prev, p.value, p.lease);
      event.prev_kv = prev;
      if (p.prev_kv) response.prev_kv = prev;
    });
    this.env.wrote?.(p.key);
    this.events.push(event);
    return response;
  }

  private async deleteRange(d: DeleteRangeRequest) {
    const iv = intervalOf(d.key, d.range_end);
    const { tx, sql } = this.env;
    let victims: KeyValue[] = [];
    if (!intervalIsEmpty(iv)) {
      const { bound, params } = intervalParams(iv);
      victims = (await tx.all<any>(sql.currentRows(bound, true, 0), params)).map(toKeyValue);
    }
    if (victims.length > 0) {
      const rev = await this.revision();
      for (const kv of victims) {
        await tx.run(sql.insertLog, [rev, this.seq++, kv.key, 0, 0, 0, EMPTY, ROW_DELETE, kv.mod_revision]);
        await tx.run(sql.deleteCurrent, [kv.key]);
        this.env.wrote?.(kv.key);
        this.events.push({ type: EventType.DELETE, kv: { key: kv.key, create_revision: 0, mod_revision: rev, version: 0, value: EMPTY, lease: 0 }, prev_kv: kv });
      }
    }
    return { header: { revision: await this.viewRev() }, deleted: victims.length, prev_kvs: d.prev_kv ? victims : [] };
  }
}

/** The row a put writes over `prev` (null: the key is new). */
function putKv(key: Buffer, rev: number, prev: KeyValue | null, value: Buffer, lease: number): KeyValue {
  return {
    key,
    create_revision: prev ? prev.create_revision : rev,
    mod_revision: rev,
    version: prev ? prev.version + 1 : 1,
    value,
    lease,
  };
}

export async function executeTxn(env: TxnEnv, req: TxnRequest): Promise<ExecutedTxn> {
  const path = await comparePath(env.tx, env.sql, req, env.known);
  const run = new TxnRun(env, path);
  if (!isTxnReadOnly(req)) {
    await run.check(req, async (op) => {
      if (op.request !== 'request_put' || !op.request_put) return;
      const p = op.request_put;
      if (p.ignore_value || p.ignore_lease) {
        const row = await env.tx.get(env.sql.currentOne, [p.key]);
        if (!row) throw Errors.keyNotFound();
      }
      if (p.lease !== 0 && !env.leaseExists(p.lease)) throw Errors.leaseNotFound();
    });
  }
  await run.check(req, async (op) => {
    if (op.request !== 'request_range' || !op.request_range) return;
    const r = op.request_range;
    if (r.revision === 0) return;
    if (r.revision > (await run.beginRev())) throw Errors.futureRev();
    if (r.revision < env.compactedRev) throw Errors.compacted();
  });
  const response = await run.apply(req);
  response.header = { revision: run.writtenRev || (await run.beginRev()) };
  return { response, rev: run.writtenRev, events: run.events };
}
