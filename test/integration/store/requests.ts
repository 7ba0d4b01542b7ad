// Request builders and assertions shared by the store suites.
import { expect } from 'vitest';
import { EtcdError } from '../../../src/etcd/errors.ts';
import type { RangeRequest, RequestOp, TxnRequest } from '../../../src/store/types.ts';

export const b = (s: string) => Buffer.from(s);

export const range = (key: string | Buffer, end: string | Buffer = '', extra: Partial<RangeRequest> = {}): RangeRequest => ({
  key: Buffer.from(key), range_end: Buffer.from(end), limit: 0, revision: 0, sort_order: 0, sort_target: 0, serializable: false,
  keys_only: false, count_only: false, min_mod_revision: 0, max_mod_revision: 0, min_create_revision: 0, max_create_revision: 0, ...extra,
});

export const put = (key: string | Buffer, value: string | Buffer, extra: { lease?: number; prev_kv?: boolean } = {}): RequestOp => ({
  request: 'request_put',
  request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: extra.lease ?? 0, prev_kv: extra.prev_kv ?? false, ignore_value: false, ignore_lease: false },
});

export const del = (key: string | Buffer): RequestOp => ({ request: 'request_delete_range', request_delete_range: { key: Buffer.from(key), range_end: b(''), prev_kv: false } });

export const txn = (...ops: RequestOp[]): TxnRequest => ({ compare: [], success: ops, failure: [] });

export const ctx = { leaseExists: () => false };

/** Resolves with the EtcdError the promise rejects with. */
export async function failure(p: Promise<unknown>): Promise<EtcdError> {
  const err = await p.then(
    () => { throw new Error('expected a failure'); },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EtcdError);
  return err as EtcdError;
}
