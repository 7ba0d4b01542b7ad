// The parent's end of etcdtree.v1.Tree/Forward (the child's is etcd/forward-service.ts): the
// etcd unary calls a parent makes to one child endpoint, multiplexed on one long-lived stream.
// A message on an open stream costs both sides a fraction of a unary gRPC call (a new HTTP/2
// stream with headers, trailers and grpc-js's per-call machinery), and that cost is most of
// what a hop adds. Calls keep their own metadata, deadline and cancellation.
import * as grpc from '@grpc/grpc-js';
import { EtcdError } from '../etcd/errors.ts';
import type { ForwardReply, ForwardRequest } from '../etcd/forward-service.ts';
import type { ResponseIdentity } from './call-context.ts';
import { treeService } from '../etcd/proto/load.ts';

/** The child predates the Forward method: nothing was executed; use unary calls. */
export class ForwardUnsupported extends Error {}

type Stream = grpc.ClientDuplexStream<ForwardRequest, ForwardReply>;

interface Pending {
  stream: Stream;
  resolve(response: Buffer): void;
  reject(err: Error): void;
}

function forwardMethod(): grpc.MethodDefinition<ForwardRequest, ForwardReply> {
  return treeService().service.Forward as grpc.MethodDefinition<ForwardRequest, ForwardReply>;
}

export class ForwardStream {
  private stream: Stream | null = null;
  private readonly pending = new Map<number, Pending>();
  private lastId = 0;
  /** Set when the child answered the stream with Unimplemented. */
  unsupported = false;

  /** `describe` turns a broken stream's status into the error its calls fail with. */
  constructor(
    private readonly client: grpc.Client,
    private readonly describe: (status: grpc.StatusObject) => Error,
  ) {}

  /** Sends one call; resolves with the child's encoded response, rejects with its error. */
  call(
    method: string,
    request: Buffer,
    metadata: Record<string, string>,
    deadline: grpc.Deadline | null,
    onCancel: ((cb: () => void) => () => void) | null,
    identity: ResponseIdentity | null = null,
  ): Promise<Buffer> {
    const stream = this.open();
    this.lastId = this.lastId >= 0xffffffff ? 1 : this.lastId + 1;
    const id = this.lastId;
    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let stopListening: (() => void) | undefined;
      const settle = () => {
        this.pending.delete(id);
        if (timer) clearTimeout(timer);
        stopListening?.();
      };
      const entry: Pending = {
        stream,
        resolve: (response) => {
          settle();
          resolve(response);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      // The caller stops waiting; the child is told, and cancels if it still can.
      const abandon = (err: EtcdError) => {
        if (this.pending.get(id) !== entry) return;
        entry.reject(err);
        if (this.stream === stream) stream.write({ id, method: '', request: Buffer.alloc(0), metadata: {}, timeout_ms: 0, cancel: true });
      };
      this.pending.set(id, entry);
      let timeoutMs = 0;
      if (deadline !== null) {
        timeoutMs = Math.max(1, Math.ceil(Number(deadline) - Date.now()));
        timer = setTimeout(() => abandon(new EtcdError(grpc.status.DEADLINE_EXCEEDED, 'context deadline exceeded')), timeoutMs);
      }
      stopListening = onCancel?.(() => abandon(new EtcdError(grpc.status.CANCELLED, 'context canceled'))) ?? undefined;
      stream.write({ id, method, request, metadata, timeout_ms: timeoutMs, cancel: false, identity });
    });
  }

  private open(): Stream {
    if (this.stream) return this.stream;
    const m = forwardMethod();
    const stream = this.client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, new grpc.Metadata());
    this.stream = stream;
    stream.on('data', (reply: ForwardReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return; // abandoned by its caller
      if (reply.code === grpc.status.OK) p.resolve(reply.response);
      else p.reject(new EtcdError(reply.code, reply.message));
    });
    // Every status ends the stream: the calls still waiting on it fail (a write among them may or
    // may not have been applied, as with a unary call on a connection that broke), and the next
    // call opens a new stream.
    stream.on('status', (status: grpc.StatusObject) => {
      if (this.stream === stream) this.stream = null;
      let err: Error;
      if (status.code === grpc.status.UNIMPLEMENTED) {
        this.unsupported = true;
        err = new ForwardUnsupported(status.details);
      } else {
        err = this.describe(status);
      }
      for (const p of [...this.pending.values()]) if (p.stream === stream) p.reject(err);
    });
    stream.on('error', () => {}); // reported through 'status'
    return stream;
  }

  close(): void {
    this.stream?.cancel();
    this.stream = null;
  }
}
