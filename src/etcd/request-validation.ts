// Request checks etcd's gRPC layer makes before anything runs (v3rpc key.go): empty keys,
// ignore_value/ignore_lease misuse, too many txn ops, duplicate keys within a txn branch.
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../store/types.ts';
import { Errors } from './errors.ts';

export function checkRange(r: RangeRequest): void {
  if (r.key.length === 0) throw Errors.emptyKey();
}

export function checkPut(r: PutRequest): void {
  if (r.key.length === 0) throw Errors.emptyKey();
  if (r.ignore_value && r.value.length !== 0) throw Errors.valueProvided();
  if (r.ignore_lease && r.lease !== 0) throw Errors.leaseProvided();
}

export function checkDelete(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw Errors.emptyKey();
}

export function checkTxn(r: TxnRequest, maxOps: number): void {
  if (r.compare.length > maxOps || r.success.length > maxOps || r.failure.length > maxOps) throw Errors.tooManyOps();
  for (const c of r.compare) if (c.key.length === 0) throw Errors.emptyKey();
  for (const op of r.success) checkOp(op, maxOps);
  checkDuplicates(r.success);
  for (const op of r.failure) checkOp(op, maxOps);
  checkDuplicates(r.failure);
}

function checkOp(op: RequestOp, maxOps: number): void {
  switch (op.request) {
    case 'request_range': return checkRange(op.request_range!);
    case 'request_put': return checkPut(op.request_put!);
    case 'request_delete_range': return checkDelete(op.request_delete_range!);
    case 'request_txn': return checkTxn(op.request_txn!, maxOps);
  }
}

/** A delete interval; end null = one key; empty end = every key >= start. */
interface DelInterval {
  start: string;
  end: string | null;
}

function latin1(b: Buffer): string {
  return b.toString('latin1'); // byte-order preserving for comparisons
}

function intersects(dels: DelInterval[], key: string): boolean {
  return dels.some((d) => (d.end === null ? d.start === key : key >= d.start && (d.end === '' || key < d.end)));
}

/**
 * etcd's checkIntervals: within one branch, no key may be put twice or both put and deleted,
 * looking into nested txns (whose then/else branches may put the same key).
 */
function checkDuplicates(reqs: RequestOp[]): { puts: Set<string>; dels: DelInterval[] } {
  const dels: DelInterval[] = [];
  for (const op of reqs) {
    if (op.request !== 'request_delete_range' || !op.request_delete_range) continue;
    const d = op.request_delete_range;
    const end = d.range_end.length === 0 ? null : d.range_end.length === 1 && d.range_end[0] === 0 ? '' : latin1(d.range_end);
    dels.push({ start: latin1(d.key), end });
  }
  const puts = new Set<string>();
  for (const op of reqs) {
    if (op.request !== 'request_txn' || !op.request_txn) continue;
    const then = checkDuplicates(op.request_txn.success);
    const otherwise = checkDuplicates(op.request_txn.failure);
    for (const k of then.puts) {
      if (puts.has(k) || intersects(dels, k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || intersects(dels, k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of reqs) {
    if (op.request !== 'request_put' || !op.request_put) continue;
    const k = latin1(op.request_put.key);
    if (puts.has(k) || intersects(dels, k)) throw Errors.duplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}
