// The one wrapper every unary handler goes through: server span, metrics, error mapping and
// logging of unexpected errors (once, with the trace id).
import type * as grpc from '@grpc/grpc-js';
import type { Span } from '@opentelemetry/api';
import { incomingContext, type CallContext } from '../child/call-context.ts';
import { log } from '../telemetry/logger.ts';
import { observeRpc, startRpc } from '../telemetry/metrics.ts';
import { spanLogFields, traceUnary } from '../telemetry/tracing.ts';
import { toGrpcError } from './errors.ts';

/** Size of each request message as received, for etcd's --max-request-bytes check. */
const requestSizes = new WeakMap<object, number>();

export function recordRequestSize(message: object, bytes: number): void {
  requestSizes.set(message, bytes);
}

export function requestSize(message: object): number {
  return requestSizes.get(message) ?? 0;
}

export function unaryHandler<Req extends object, Res>(
  fullMethod: string,
  handle: (req: Req, ctx: CallContext, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = startRpc(fullMethod);
    // Errors become gRPC statuses inside the span, so the span records the real code and the
    // log line of an unexpected error carries the trace id.
    traceUnary(fullMethod, call.metadata, async (span) => {
      try {
        return await handle(call.request, contextOf(call, span), call);
      } catch (err) {
        const status = toGrpcError(err);
        if (status.unexpected) log.error({ err, method: fullMethod, ...spanLogFields(span) }, 'request failed unexpectedly');
        throw status;
      }
    }).then(
      (res) => {
        observeRpc(fullMethod, started, 0);
        callback(null, res);
      },
      (status: ReturnType<typeof toGrpcError>) => {
        observeRpc(fullMethod, started, status.code);
        callback(status);
      },
    );
  };
}

/** The tree context of an incoming call: trace, hops, read index, deadline, cancellation. */
function contextOf(call: grpc.ServerUnaryCall<unknown, unknown>, span: Span): CallContext {
  const deadline = call.getDeadline();
  const onCancel = (cb: () => void) => {
    call.once('cancelled', cb);
    return () => void call.off('cancelled', cb);
  };
  return incomingContext(call.metadata, span, Number.isFinite(Number(deadline)) ? deadline : null, onCancel);
}
