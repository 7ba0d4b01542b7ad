// Txn compares, evaluated as etcd evaluates them (etcd's applyCompare/compareKV).
import type { ReadTx } from './dialect.ts';
import { intervalParams, toKeyValue } from './range-reader.ts';
import type { SqlText } from './sql-text.ts';
import { CompareResult, CompareTarget, intervalOf, intervalIsEmpty, type Compare, type KeyValue, type TxnRequest } from './types.ts';

const EMPTY = Buffer.alloc(0);

/** The compare's operand, taken only from the union member matching the target (etcd's rule). */
function operand(c: Compare): number | Buffer {
  switch (c.target) {
    case CompareTarget.VALUE: return c.target_union === 'value' ? (c.value ?? EMPTY) : EMPTY;
    case CompareTarget.CREATE: return c.target_union === 'create_revision' ? (c.create_revision ?? 0) : 0;
    case CompareTarget.MOD: return c.target_union === 'mod_revision' ? (c.mod_revision ?? 0) : 0;
    case CompareTarget.VERSION: return c.target_union === 'version' ? (c.version ?? 0) : 0;
    case CompareTarget.LEASE: return c.target_union === 'lease' ? (c.lease ?? 0) : 0;
    default: return 0;
  }
}

function compareKv(c: Compare, kv: KeyValue | null): boolean {
  const want = operand(c);
  let result: number;
  if (c.target === CompareTarget.VALUE) {
    result = Buffer.compare(kv?.value ?? EMPTY, want as Buffer);
  } else {
    const have =
      c.target === CompareTarget.CREATE ? (kv?.create_revision ?? 0)
      : c.target === CompareTarget.MOD ? (kv?.mod_revision ?? 0)
      : c.target === CompareTarget.VERSION ? (kv?.version ?? 0)
      : (kv?.lease ?? 0);
    result = Math.sign(have - (want as number));
  }
  switch (c.result) {
    case CompareResult.EQUAL: return result === 0;
    case CompareResult.NOT_EQUAL: return result !== 0;
    case CompareResult.GREATER: return result > 0;
    case CompareResult.LESS: return result < 0;
    default: return true;
  }
}

/** A single key's state when known without the database (TxnEnv.known). */
export type KnownKey = (key: Buffer) => KeyValue | null | undefined;

async function applyCompare(tx: ReadTx, sql: SqlText, c: Compare, known: KnownKey | undefined): Promise<boolean> {
  const iv = intervalOf(c.key, c.range_end);
  let kvs: KeyValue[] = [];
  const single = c.range_end.length === 0 ? known?.(c.key) : undefined;
  if (single !== undefined) {
    kvs = single ? [single] : [];
  } else if (!intervalIsEmpty(iv)) {
    const { bound, params } = intervalParams(iv);
    kvs = (await tx.all<any>(sql.currentRows(bound, true, 0), params)).map(toKeyValue);
  }
  // A value compare on missing keys always fails: etcd cannot tell a missing value from "".
  if (kvs.length === 0) return c.target === CompareTarget.VALUE ? false : compareKv(c, null);
  return kvs.every((kv) => compareKv(c, kv));
}

/**
 * etcd's compareToPath: every compare of the txn and of the nested txns on the chosen path,
 * all evaluated against the state before the txn. path[0] is the top level's outcome; nested
 * txns follow in depth-first order.
 */
export async function comparePath(tx: ReadTx, sql: SqlText, req: TxnRequest, known?: KnownKey): Promise<boolean[]> {
  let ok = true;
  for (const c of req.compare) {
    if (!(await applyCompare(tx, sql, c, known))) {
      ok = false;
      break;
    }
  }
  const path = [ok];
  for (const op of ok ? req.success : req.failure) {
    if (op.request === 'request_txn' && op.request_txn) path.push(...(await comparePath(tx, sql, op.request_txn, known)));
  }
  return path;
}
