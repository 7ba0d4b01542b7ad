// etcdtree.v1.Tree/Forward, the child's end (the parent's is child/forward-stream.ts): etcd
// unary calls that a parent multiplexes on one long-lived stream. Each is handled exactly as
// the same call arriving on its own (same handler, span, metrics, metadata, deadline and
// cancellation) and answered by id as soon as it finishes, in any order.
import * as grpc from '@grpc/grpc-js';
import { metadataOf, type ResponseIdentity } from '../child/call-context.ts';
import type { IncomingCall } from './rpc-handler.ts';
import type { StreamTracker } from './lease-service.ts';

export interface ForwardRequest {
  id: number;
  method: string;
  request: Buffer;
  metadata: Record<string, string>;
  timeout_ms: number;
  cancel: boolean;
  identity?: ResponseIdentity | null;
}

export interface ForwardReply {
  id: number;
  code: number;
  message: string;
  response: Buffer;
}

/** A unary method a Forward stream may carry: its codecs and its handler. */
export interface ForwardableMethod {
  decode(bytes: Buffer): object;
  encode(response: object): Buffer;
  invoke(request: object, incoming: IncomingCall): Promise<object>;
}

const NO_BYTES = Buffer.alloc(0);

function failure(id: number, code: grpc.status, message: string): ForwardReply {
  return { id, code, message, response: NO_BYTES };
}

export function forwardHandler(methods: ReadonlyMap<string, ForwardableMethod>, track: StreamTracker): grpc.handleBidiStreamingCall<ForwardRequest, ForwardReply> {
  return (call) => {
    /** Cancellation listeners of the calls in flight, by id. */
    const inFlight = new Map<number, Set<() => void>>();
    // Closing: the parent half-closed or this node shuts down. Calls in flight still get their
    // answers, new ones are refused, and the stream ends when the last one is answered.
    let closing = false;
    let ended = false;
    const untrack = track(() => {
      closing = true;
      endWhenDrained();
    });
    const endWhenDrained = () => {
      if (!closing || inFlight.size > 0 || ended) return;
      ended = true;
      untrack();
      call.end();
    };
    const reply = (r: ForwardReply) => {
      if (!ended) call.write(r);
    };
    const cancel = (id: number) => {
      for (const cb of [...(inFlight.get(id) ?? [])]) cb();
    };

    call.on('data', (msg: ForwardRequest) => {
      if (msg.cancel) return cancel(msg.id);
      if (closing) return reply(failure(msg.id, grpc.status.UNAVAILABLE, 'etcdserver: server stopped'));
      if (inFlight.has(msg.id)) return reply(failure(msg.id, grpc.status.INVALID_ARGUMENT, `etcd-tree: forwarded call id ${msg.id} is already in flight`));
      const method = methods.get(msg.method);
      if (!method) return reply(failure(msg.id, grpc.status.UNIMPLEMENTED, `etcd-tree: method ${msg.method} cannot be forwarded`));
      let request: object;
      let metadata: grpc.Metadata;
      try {
        request = method.decode(msg.request);
        metadata = metadataOf(msg.metadata);
      } catch (err) {
        return reply(failure(msg.id, grpc.status.INTERNAL, `etcd-tree: malformed forwarded request: ${(err as Error).message}`));
      }
      const listeners = new Set<() => void>();
      inFlight.set(msg.id, listeners);
      const incoming: IncomingCall = {
        metadata,
        deadline: msg.timeout_ms > 0 ? new Date(Date.now() + msg.timeout_ms) : null,
        identity: msg.identity ?? null,
        onCancel: (cb) => {
          listeners.add(cb);
          return () => void listeners.delete(cb);
        },
      };
      method
        .invoke(request, incoming)
        .then(
          (res) => reply({ id: msg.id, code: grpc.status.OK, message: '', response: method.encode(res) }),
          (status: { code?: number; details?: string }) => reply(failure(msg.id, status.code ?? grpc.status.UNKNOWN, status.details ?? String(status))),
        )
        .finally(() => {
          inFlight.delete(msg.id);
          endWhenDrained();
        });
    });
    call.on('end', () => {
      closing = true;
      endWhenDrained();
    });
    // The parent went away: nobody will read the answers; cancel what can still be cancelled.
    const abandoned = () => {
      if (ended) return;
      ended = true;
      closing = true;
      untrack();
      for (const id of [...inFlight.keys()]) cancel(id);
    };
    call.on('cancelled', abandoned);
    call.on('error', abandoned);
  };
}
