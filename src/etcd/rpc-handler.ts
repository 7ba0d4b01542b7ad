// The one wrapper every unary handler goes through: server span, metrics, error mapping and
// logging of unexpected errors (once, with the trace id).
import type * as grpc from '@grpc/grpc-js';
import { incomingContext, type CallContext, type ResponseIdentity } from '../child/call-context.ts';
import { log } from '../telemetry/logger.ts';
import { observeRpc, startRpc } from '../telemetry/metrics.ts';
import { spanLogFields, traceUnary } from '../telemetry/tracing.ts';
import { toGrpcError } from './errors.ts';

/**
 * Size of each request message as received, for etcd's --max-request-bytes check: kept on the
 * message itself under a symbol (a WeakMap entry per request cost the garbage collector more).
 */
const REQUEST_SIZE = Symbol('etcd-tree.requestSize');

export function recordRequestSize(message: object, bytes: number): void {
  (message as { [REQUEST_SIZE]?: number })[REQUEST_SIZE] = bytes;
}

export function requestSize(message: object): number {
  return (message as { [REQUEST_SIZE]?: number })[REQUEST_SIZE] ?? 0;
}

/** What a handler needs of an incoming call, whether it came as a gRPC call or on a Forward stream. */
export interface IncomingCall {
  metadata: grpc.Metadata;
  deadline: grpc.Deadline | null;
  onCancel: CallContext['onCancel'];
  /** From a Forward stream: the header identity to answer with (CallContext.identity). */
  identity?: ResponseIdentity | null;
}

/** A gRPC unary handler that can also be invoked without a gRPC call (forward-service.ts). */
export interface UnaryHandler<Req, Res> extends grpc.handleUnaryCall<Req, Res> {
  /** Resolves with the response, or rejects with the gRPC status the call would have ended with. */
  invoke(request: Req, incoming: IncomingCall): Promise<Res>;
}

export function unaryHandler<Req extends object, Res>(
  fullMethod: string,
  handle: (req: Req, ctx: CallContext) => Promise<Res>,
): UnaryHandler<Req, Res> {
  const invoke = (request: Req, incoming: IncomingCall): Promise<Res> => {
    const started = startRpc(fullMethod);
    // Errors become gRPC statuses inside the span, so the span records the real code and the
    // log line of an unexpected error carries the trace id.
    return traceUnary(fullMethod, incoming.metadata, async (span) => {
      try {
        return await handle(request, incomingContext(incoming.metadata, span, incoming.deadline, incoming.onCancel, incoming.identity ?? null));
      } catch (err) {
        const status = toGrpcError(err);
        if (status.unexpected) log.error({ err, method: fullMethod, ...spanLogFields(span) }, 'request failed unexpectedly');
        throw status;
      }
    }).then(
      (res) => {
        observeRpc(fullMethod, started, 0);
        return res;
      },
      (status: ReturnType<typeof toGrpcError>) => {
        observeRpc(fullMethod, started, status.code);
        throw status;
      },
    );
  };
  const handler: grpc.handleUnaryCall<Req, Res> = (call, callback) => {
    invoke(call.request, incomingOf(call)).then(
      (res) => callback(null, res),
      (status: ReturnType<typeof toGrpcError>) => callback(status),
    );
  };
  return Object.assign(handler, { invoke });
}

/** The parts of an incoming gRPC call that its handling needs. */
function incomingOf(call: grpc.ServerUnaryCall<unknown, unknown>): IncomingCall {
  const deadline = call.getDeadline();
  const onCancel = (cb: () => void) => {
    call.once('cancelled', cb);
    return () => void call.off('cancelled', cb);
  };
  return { metadata: call.metadata, deadline: Number.isFinite(Number(deadline)) ? deadline : null, onCancel };
}
