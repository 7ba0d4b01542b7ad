// Domain types of the MVCC model. Their field names are those of etcd's protobuf messages
// (mvccpb.KeyValue, etcdserverpb.RangeRequest, ...) on purpose: the etcd API is the domain, and
// keeping one shape means no per-row conversion between the store and the gRPC edge.

/** mvccpb.KeyValue */
export interface KeyValue {
  key: Buffer;
  create_revision: number;
  mod_revision: number;
  version: number;
  value: Buffer;
  lease: number;
}

export const EventType = { PUT: 0, DELETE: 1 } as const;

/** mvccpb.Event; `kv` of a DELETE carries the key and mod_revision of the deletion only. */
export interface MvccEvent {
  type: 0 | 1;
  kv: KeyValue;
  prev_kv: KeyValue | null;
}

export const SortOrder = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
export const SortTarget = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;

export interface RangeRequest {
  key: Buffer;
  range_end: Buffer;
  limit: number;
  revision: number;
  sort_order: number;
  sort_target: number;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: number;
  max_mod_revision: number;
  min_create_revision: number;
  max_create_revision: number;
}

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  lease: number;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}

export interface DeleteRangeRequest {
  key: Buffer;
  range_end: Buffer;
  prev_kv: boolean;
}

export const CompareResult = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
export const CompareTarget = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;

export interface Compare {
  result: number;
  target: number;
  key: Buffer;
  range_end: Buffer;
  version?: number;
  create_revision?: number;
  mod_revision?: number;
  value?: Buffer;
  lease?: number;
  target_union?: string;
}

export interface RequestOp {
  request?: 'request_range' | 'request_put' | 'request_delete_range' | 'request_txn';
  request_range?: RangeRequest | null;
  request_put?: PutRequest | null;
  request_delete_range?: DeleteRangeRequest | null;
  request_txn?: TxnRequest | null;
}

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface ResponseHeader {
  cluster_id?: number;
  member_id?: number;
  revision: number;
  raft_term?: number;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutResponse {
  header: ResponseHeader;
  prev_kv: KeyValue | null;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  prev_kvs: KeyValue[];
}

export interface ResponseOp {
  response: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  response_range?: RangeResponse;
  response_put?: PutResponse;
  response_delete_range?: DeleteRangeResponse;
  response_txn?: TxnResponse;
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

/**
 * A key interval as etcd defines it: `end === null` means the single key; an empty `end` means
 * every key >= start (etcd's range_end "\0"); otherwise [start, end).
 */
export interface KeyInterval {
  start: Buffer;
  end: Buffer | null;
}

export function intervalOf(key: Buffer, rangeEnd: Buffer | undefined | null): KeyInterval {
  if (!rangeEnd || rangeEnd.length === 0) return { start: key, end: null };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start: key, end: Buffer.alloc(0) };
  return { start: key, end: rangeEnd };
}

export function intervalContains(iv: KeyInterval, key: Buffer): boolean {
  if (iv.end === null) return iv.start.equals(key);
  if (Buffer.compare(key, iv.start) < 0) return false;
  return iv.end.length === 0 || Buffer.compare(key, iv.end) < 0;
}

/** True when the interval can hold no key (range_end <= key), which etcd answers with nothing. */
export function intervalIsEmpty(iv: KeyInterval): boolean {
  return iv.end !== null && iv.end.length > 0 && Buffer.compare(iv.end, iv.start) <= 0;
}
