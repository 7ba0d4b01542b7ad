// etcd's errors, defined once: gRPC code + exact message as etcd 3.5 sends them. Inner layers
// throw EtcdError; toGrpcError() is the one place that turns anything into a gRPC status.
import { status as Code, Metadata } from '@grpc/grpc-js';

export class EtcdError extends Error {
  constructor(readonly code: Code, message: string) {
    super(message);
    this.name = 'EtcdError';
  }
}

const def = (code: Code, message: string) => () => new EtcdError(code, message);

export const Errors = {
  emptyKey: def(Code.INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  keyNotFound: def(Code.INVALID_ARGUMENT, 'etcdserver: key not found'),
  valueProvided: def(Code.INVALID_ARGUMENT, 'etcdserver: value is provided'),
  leaseProvided: def(Code.INVALID_ARGUMENT, 'etcdserver: lease is provided'),
  tooManyOps: def(Code.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
  duplicateKey: def(Code.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'),
  requestTooLarge: def(Code.INVALID_ARGUMENT, 'etcdserver: request is too large'),
  compacted: def(Code.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: def(Code.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'),
  leaseNotFound: def(Code.NOT_FOUND, 'etcdserver: requested lease not found'),
  leaseExist: def(Code.FAILED_PRECONDITION, 'etcdserver: lease already exists'),
  leaseTTLTooLarge: def(Code.OUT_OF_RANGE, 'etcdserver: too large lease TTL'),
  /** Not an etcd error: a transaction whose keys live on more than one leaf (DESIGN.md 2). */
  crossLeafTxn: (leaves: string[]) =>
    new EtcdError(Code.FAILED_PRECONDITION, `etcd-tree: transaction spans several leaves (${[...leaves].sort().join(', ')}); a transaction must stay within one leaf`),
  unavailable: (what: string) => new EtcdError(Code.UNAVAILABLE, `etcd-tree: ${what}`),
  unimplemented: (what: string) => new EtcdError(Code.UNIMPLEMENTED, `etcd-tree: ${what} is not implemented`),
  /** etcd's status for streams of a stopping server: clients reconnect elsewhere on it. */
  stopped: def(Code.UNAVAILABLE, 'etcdserver: server stopped'),
} as const;

/** Watch cancel reasons etcd puts in WatchResponse.cancel_reason. */
export const WatchCancelReasons = {
  emptyRange: 'mvcc: watcher range is empty',
  duplicateId: 'mvcc: duplicate watch ID provided on the WatchStream',
  slowWatcher: 'etcd-tree: watcher fell too far behind (buffer limit reached); re-create the watch',
} as const;

export interface GrpcStatusError {
  code: Code;
  details: string;
  metadata: Metadata;
}

/**
 * Converts anything thrown by a handler into a gRPC status. EtcdError keeps its code and message;
 * anything else is UNKNOWN (the caller logs it once, with the trace id).
 */
export function toGrpcError(err: unknown): GrpcStatusError & { unexpected: boolean } {
  if (err instanceof EtcdError) return { code: err.code, details: err.message, metadata: new Metadata(), unexpected: false };
  const message = err instanceof Error ? err.message : String(err);
  return { code: Code.UNKNOWN, details: `etcd-tree: ${message}`, metadata: new Metadata(), unexpected: true };
}
