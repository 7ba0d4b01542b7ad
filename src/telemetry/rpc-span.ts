// One SERVER span per incoming RPC, continuing the caller's trace.
//
// Two ways to make that span, chosen by tracing.ts:
// - recording: a real SDK span, sampled and handed to the span processors (OTLP export, tests);
// - pass-through (default): no SDK span at all, only a fresh span context (new span id, the
//   caller's trace id and flags, or a new trace id). Logs still get trace ids and calls to child
//   nodes still carry the trace, but an RPC costs an id generation instead of a span's
//   timestamps, attribute maps and processor hand-off. That matters because the benchmark
//   holds server CPU per operation against etcd's.
import * as grpc from '@grpc/grpc-js';
import {
  context,
  isSpanContextValid,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import { extractContext } from './grpc-metadata-carrier.ts';
import { rpcMethod } from './rpc-method.ts';

const ids = new RandomIdGenerator();

/** The recording tracer, or undefined in pass-through mode. Set by tracing.ts. */
let recordingTracer: Tracer | undefined;

export function useRecordingTracer(tracer: Tracer | undefined): void {
  recordingTracer = tracer;
}

// Codes that mean the server failed, not the caller (OpenTelemetry's gRPC semantic conventions
// for server spans): only these mark a span as an error. NotFound, FailedPrecondition,
// OutOfRange (compacted) etc. are answers, not failures.
const SERVER_ERROR_CODES: ReadonlySet<number> = new Set([
  grpc.status.UNKNOWN,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.INTERNAL,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

/** The gRPC status code an error will be sent with: its numeric `code`, else UNKNOWN. */
export function grpcCodeOf(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : grpc.status.UNKNOWN;
}

function passThroughSpan(parent: Context): Span {
  const parentSpan = trace.getSpanContext(parent);
  const continues = parentSpan !== undefined && isSpanContextValid(parentSpan);
  return trace.wrapSpanContext({
    traceId: continues ? parentSpan.traceId : ids.generateTraceId(),
    spanId: ids.generateSpanId(),
    traceFlags: continues ? parentSpan.traceFlags : TraceFlags.NONE,
    traceState: continues ? parentSpan.traceState : undefined,
  });
}

/** Starts the SERVER span of an RPC and returns it with the context that makes it active. */
function startRpcSpan(fullMethod: string, metadata: grpc.Metadata): { span: Span; context: Context } {
  const parent = extractContext(metadata);
  let span: Span;
  if (recordingTracer) {
    const { name, service, method } = rpcMethod(fullMethod);
    span = recordingTracer.startSpan(name, {
      kind: SpanKind.SERVER,
      attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method },
    }, parent);
  } else {
    span = passThroughSpan(parent);
  }
  return { span, context: trace.setSpan(parent, span) };
}

/**
 * Starts the server span of a streaming RPC (Watch, LeaseKeepAlive). The caller runs its handlers
 * in `context` (context.with) and ends the span with endRpcSpan when the stream closes.
 */
export function startStreamSpan(fullMethod: string, metadata: grpc.Metadata): { span: Span; context: Context } {
  return startRpcSpan(fullMethod, metadata);
}

/** Records how an RPC ended (`error` undefined = OK) and ends its span. */
export function endRpcSpan(span: Span, error?: unknown): void {
  if (span.isRecording()) {
    const code = error === undefined ? grpc.status.OK : grpcCodeOf(error);
    span.setAttribute('rpc.grpc.status_code', code);
    if (error !== undefined) {
      span.recordException(error instanceof Error ? error : String(error));
      if (SERVER_ERROR_CODES.has(code)) {
        const message = (error as { details?: unknown }).details ?? (error as { message?: unknown }).message;
        span.setStatus({ code: SpanStatusCode.ERROR, message: typeof message === 'string' ? message : undefined });
      }
    }
  }
  span.end();
}

/**
 * Runs a unary handler inside a SERVER span named like "etcdserverpb.KV/Range", child of the
 * caller's trace context from `metadata`. The span ends when `fn` settles; a thrown error is
 * recorded with its gRPC code and rethrown unchanged. `fn` also gets the span itself: without
 * an exporter no context manager runs (see tracing.ts), so code that logs or calls a child
 * node takes the ids from it (spanLogFields, injectSpan).
 */
export async function traceUnary<T>(fullMethod: string, metadata: grpc.Metadata, fn: (span: Span) => Promise<T>): Promise<T> {
  const { span, context: spanContext } = startRpcSpan(fullMethod, metadata);
  try {
    const result = await context.with(spanContext, fn, undefined, span);
    endRpcSpan(span);
    return result;
  } catch (err) {
    endRpcSpan(span, err);
    throw err;
  }
}

/** trace_id/span_id of a span, for log lines (what the logger's mixin adds when a context manager runs). */
export function spanLogFields(span: Span): Record<string, string> {
  const c = span.spanContext();
  return isSpanContextValid(c) ? { trace_id: c.traceId, span_id: c.spanId } : {};
}

/** True when spans are recorded (an exporter or a test collector is installed). */
export function spansRecorded(): boolean {
  return recordingTracer !== undefined;
}

/**
 * A CLIENT span for a call to another process (a child node), child of `parent` (or of the active
 * context): recorded when tracing records, else a pass-through span that still carries the trace.
 */
export function startClientSpan(name: string, parent: Span | null, attributes: Record<string, string | number> = {}): Span {
  const parentContext = parent ? trace.setSpan(context.active(), parent) : context.active();
  if (!recordingTracer) return passThroughSpan(parentContext);
  return recordingTracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parentContext);
}

/**
 * Runs `fn` inside an INTERNAL/CLIENT span named `name` when spans are recorded (SQL statements,
 * Redis scripts); costs nothing otherwise. The span is a child of the active context.
 */
export async function inSpan<T>(name: string, kind: SpanKind, attributes: Record<string, string | number | boolean>, fn: () => Promise<T>): Promise<T> {
  if (!recordingTracer) return fn();
  return recordingTracer.startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Like inSpan, for what a request does in another process (SQL statements, Redis scripts): the
 * span is recorded only inside a traced request (a span is active). Background work outside
 * any request (watermark polls, fencing, lease expiry checks) is not recorded: each poll would
 * otherwise be a trace of its own, several a second per node.
 */
export function inChildSpan<T>(name: string, kind: SpanKind, attributes: Record<string, string | number | boolean>, fn: () => Promise<T>): Promise<T> {
  if (!recordingTracer || trace.getSpan(context.active()) === undefined) return fn();
  return inSpan(name, kind, attributes, fn);
}
