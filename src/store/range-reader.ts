// Range over one leaf, exactly as etcd's apply layer does it: fetch (limit+1 when nothing needs
// the whole range), prune by min/max revision filters, sort, truncate, count.
import type { ReadTx, SqlParam } from './dialect.ts';
import type { KeyBound, SqlText } from './sql-text.ts';
import type { PageCounts } from './page-counts.ts';
import { intervalOf, intervalIsEmpty, SortOrder, SortTarget, type KeyInterval, type KeyValue, type RangeRequest } from './types.ts';

export interface RangeRows {
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

interface Row {
  k: Buffer;
  create_rev: number;
  mod_rev: number;
  version: number;
  lease: number;
  value?: Buffer;
}

const EMPTY = Buffer.alloc(0);
const ZERO = Buffer.from([0]);

export function toKeyValue(r: Row): KeyValue {
  return { key: r.k, create_revision: Number(r.create_rev), mod_revision: Number(r.mod_rev), version: Number(r.version), value: r.value ?? EMPTY, lease: Number(r.lease) };
}

/** SQL bound and parameters for an interval; a single key is [key, key+"\0"). */
export function intervalParams(iv: KeyInterval): { bound: KeyBound; params: SqlParam[] } {
  if (iv.end === null) return { bound: 'bounded', params: [iv.start, Buffer.concat([iv.start, ZERO])] };
  if (iv.end.length === 0) return { bound: 'unbounded', params: [iv.start] };
  return { bound: 'bounded', params: [iv.start, iv.end] };
}

/**
 * Reads `req` at revision `rev`. `atHead` says the leaf holds no change above `rev`, so the
 * current table is exact; otherwise history is read.
 */
export async function readRange(tx: ReadTx, sql: SqlText, req: RangeRequest, rev: number, atHead: boolean, counts?: PageCounts): Promise<RangeRows> {
  const iv = intervalOf(req.key, req.range_end);
  if (intervalIsEmpty(iv)) return { kvs: [], more: false, count: 0 };
  const { bound, params } = intervalParams(iv);
  const revParams = atHead ? params : [...params, rev];

  if (req.count_only) {
    const row = await tx.get<{ n: number }>(atHead ? sql.currentCount(bound) : sql.historicalCount(bound), revParams);
    return { kvs: [], more: false, count: Number(row?.n ?? 0) };
  }

  const filtered = req.min_mod_revision > 0 || req.max_mod_revision > 0 || req.min_create_revision > 0 || req.max_create_revision > 0;
  const order = effectiveSortOrder(req);
  const wholeRange = order !== SortOrder.NONE || filtered;
  const fetchLimit = !wholeRange && req.limit > 0 ? req.limit + 1 : 0;
  const withValue = !req.keys_only || req.sort_target === SortTarget.VALUE;
  const text = atHead ? sql.currentRows(bound, withValue, fetchLimit) : sql.historicalRows(bound, withValue, fetchLimit);
  const rows = await tx.all<Row>(text, fetchLimit > 0 ? [...revParams, fetchLimit] : revParams);

  let count = rows.length;
  const end = iv.end ?? EMPTY;
  if (fetchLimit > 0 && rows.length === fetchLimit) {
    const known = counts?.get(rev, iv.start, end);
    count = known ?? Number((await tx.get<{ n: number }>(atHead ? sql.currentCount(bound) : sql.historicalCount(bound), revParams))?.n ?? 0);
    // The state at rev is final (reads happen at resolved revisions): the next page's count follows.
    counts?.rememberNext(rev, rows[req.limit - 1].k, end, count, req.limit);
  }
  let kvs = rows.map(toKeyValue);
  if (filtered) kvs = kvs.filter((kv) => passesFilters(req, kv));
  if (order !== SortOrder.NONE) sortKvs(kvs, req.sort_target, order === SortOrder.DESCEND);
  let more = false;
  if (req.limit > 0 && kvs.length > req.limit) {
    kvs = kvs.slice(0, req.limit);
    more = true;
  }
  if (req.keys_only) for (const kv of kvs) kv.value = EMPTY;
  return { kvs, more, count };
}

/**
 * etcd's rule: a non-key target without an order sorts ascending; ascending by key is the
 * natural order (NONE).
 */
export function effectiveSortOrder(req: RangeRequest): number {
  if (req.sort_target !== SortTarget.KEY && req.sort_order === SortOrder.NONE) return SortOrder.ASCEND;
  if (req.sort_target === SortTarget.KEY && req.sort_order === SortOrder.ASCEND) return SortOrder.NONE;
  return req.sort_order;
}

/** One statement outside any transaction (its own snapshot). */
export type RunOnce = <T>(sql: string, params: SqlParam[]) => Promise<T[]>;

/**
 * The common case in one or two statements without a transaction: a range in key order, no
 * filters, at a revision the leaf has not moved past. Each statement also reads the leaf's head
 * revision; null means the answer could not be proven exact at `rev` (the leaf moved on), and
 * the caller reads again in a snapshot (readRange).
 */
/** A read at the head; `head` is the snapshot's highest revision when the statement that found the rows also read it. */
export type HeadRows = RangeRows & { head?: number };

export async function readRangeAtHead(once: RunOnce, sql: SqlText, req: RangeRequest, rev: number, counts?: PageCounts): Promise<HeadRows | null> {
  const filtered = req.min_mod_revision > 0 || req.max_mod_revision > 0 || req.min_create_revision > 0 || req.max_create_revision > 0;
  if (filtered || effectiveSortOrder(req) !== SortOrder.NONE) return null;
  const iv = intervalOf(req.key, req.range_end);
  if (intervalIsEmpty(iv)) return { kvs: [], more: false, count: 0 };
  const { bound, params } = intervalParams(iv);
  const countAtHead = async (): Promise<{ head: number; n: number }> => {
    const [row] = await once<{ head: number | null; n: number }>(sql.headAndCurrentCount(bound), [...params]);
    return { head: Number(row?.head ?? 0), n: Number(row?.n ?? 0) };
  };
  if (req.count_only) {
    const { head, n } = await countAtHead();
    return head > rev ? null : { kvs: [], more: false, count: n };
  }
  const fetchLimit = req.limit > 0 ? req.limit + 1 : 0;
  const rows = await once<Row & { head: number | null }>(sql.headAndCurrentRows(bound, !req.keys_only, fetchLimit), fetchLimit > 0 ? [...params, fetchLimit] : params);
  // No row matched (or the dialect's form carries the head on a row of NULLs): if the head read
  // afterwards is still <= rev, it was at the read too (it only grows), so "nothing" is exact.
  const head = rows.length > 0 ? Number(rows[0].head ?? 0) : Number((await once<{ rev: number | null }>(sql.headRev, []))[0]?.rev ?? 0);
  if (head > rev) return null;
  const found = rows[0]?.k === null || rows[0]?.k === undefined ? [] : rows;
  let count = found.length;
  if (fetchLimit > 0 && found.length === fetchLimit) {
    const end = iv.end ?? EMPTY;
    const known = counts?.get(head, iv.start, end);
    if (known !== undefined) {
      count = known;
    } else {
      const again = await countAtHead();
      if (again.head !== head) return null; // a commit landed between the two statements
      count = again.n;
    }
    counts?.rememberNext(head, found[req.limit - 1].k, end, count, req.limit);
  }
  let kvs = found.map(toKeyValue);
  let more = false;
  if (req.limit > 0 && kvs.length > req.limit) {
    kvs = kvs.slice(0, req.limit);
    more = true;
  }
  if (rows.length > 0) return { kvs, more, count, head };
  return { kvs, more, count };
}

function passesFilters(r: RangeRequest, kv: KeyValue): boolean {
  if (r.max_mod_revision > 0 && kv.mod_revision > r.max_mod_revision) return false;
  if (r.min_mod_revision > 0 && kv.mod_revision < r.min_mod_revision) return false;
  if (r.max_create_revision > 0 && kv.create_revision > r.max_create_revision) return false;
  if (r.min_create_revision > 0 && kv.create_revision < r.min_create_revision) return false;
  return true;
}

export function sortKvs(kvs: KeyValue[], target: number, descending: boolean): void {
  const by: (a: KeyValue, b: KeyValue) => number =
    target === SortTarget.VERSION ? (a, b) => a.version - b.version
    : target === SortTarget.CREATE ? (a, b) => a.create_revision - b.create_revision
    : target === SortTarget.MOD ? (a, b) => a.mod_revision - b.mod_revision
    : target === SortTarget.VALUE ? (a, b) => Buffer.compare(a.value, b.value)
    : (a, b) => Buffer.compare(a.key, b.key);
  kvs.sort(descending ? (a, b) => by(b, a) : by);
}
