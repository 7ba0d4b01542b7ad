// The one error the Redis allocator throws for "cannot hand out or vouch for revisions now".
// It is an EtcdError with code UNAVAILABLE, so toGrpcError() turns it into the status clients
// retry on, without a mapping of its own; `kind` tells callers (the node's generation loop,
// metrics) why.
import { status as Code } from '@grpc/grpc-js';
import { EtcdError } from '../etcd/errors.ts';

export type RevisionsUnavailableKind =
  /** Redis cannot be reached, timed out, or answered LOADING/BUSY/READONLY... */
  | 'unreachable'
  /** The `generation` key is missing: the counter cannot be trusted until a node re-establishes it. */
  | 'no-generation'
  /** The `counter` key is missing (Redis restarted empty and nothing seeded it yet). */
  | 'no-counter'
  /** A wait for a watermark outlived maxWaitMs, or the generation changed while waiting. */
  | 'timeout'
  /** The allocator was closed. */
  | 'closed';

export class RevisionsUnavailable extends EtcdError {
  constructor(
    readonly kind: RevisionsUnavailableKind,
    readonly reason: string,
  ) {
    super(Code.UNAVAILABLE, `etcd-tree: ${reason}`);
    this.name = 'RevisionsUnavailable';
  }

  static noGeneration(): RevisionsUnavailable {
    return new RevisionsUnavailable('no-generation', 'revisions unavailable: the Redis revision counter has no generation (Redis lost its data?) until a node re-establishes it; retry');
  }

  static noCounter(): RevisionsUnavailable {
    return new RevisionsUnavailable('no-counter', 'revisions unavailable: the Redis revision counter is missing (Redis restarted empty?); retry');
  }

  static unreachable(reason: string): RevisionsUnavailable {
    return new RevisionsUnavailable('unreachable', `redis unreachable: ${reason}`);
  }

  static closed(): RevisionsUnavailable {
    return new RevisionsUnavailable('closed', 'the revision allocator is closed');
  }
}
