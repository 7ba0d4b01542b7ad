// W3C trace context in gRPC metadata: `traceparent` / `tracestate` travel as ordinary ASCII
// metadata entries, which is what kube-apiserver's etcd client and our own parent nodes send.
import * as grpc from '@grpc/grpc-js';
import { context, propagation, ROOT_CONTEXT, trace, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';

const TRACEPARENT = 'traceparent';

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get(metadata, key) {
    const values = metadata.get(key);
    // Binary (-bin) entries arrive as Buffers; trace headers are never binary.
    return values.length > 0 && typeof values[0] === 'string' ? values[0] : undefined;
  },
};

const metadataSetter: TextMapSetter<grpc.Metadata> = {
  set: (metadata, key, value) => metadata.set(key, value),
};

/**
 * The context an incoming request continues: its remote parent span when the caller sent a
 * `traceparent`, the root context otherwise.
 */
export function extractContext(metadata: grpc.Metadata): Context {
  // Most requests carry no trace header: skip the propagator entirely for them.
  if (metadata.get(TRACEPARENT).length === 0) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
}

/** Writes the active span's `traceparent`/`tracestate` into metadata for an outgoing call. */
export function injectContext(metadata: grpc.Metadata): void {
  propagation.inject(context.active(), metadata, metadataSetter);
}

/**
 * Writes a given span's `traceparent`/`tracestate` into plain metadata fields (works without a
 * context manager); the fields become gRPC metadata or travel in a Forward message.
 */
export function injectSpan(fields: Record<string, string>, span: Span): void {
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), fields);
}
