// OpenTelemetry setup for a node: one tracer provider, AsyncLocalStorage context propagation
// (so the active span follows a request across awaits and into log lines) and the W3C
// trace-context propagator (so a trace continues across kube-apiserver -> node -> child nodes).
//
// Spans are exported only when the standard OTEL_* variables ask for it. Without an exporter a
// node runs in pass-through mode (see rpc-span.ts): trace ids exist and propagate, nothing is
// recorded.
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { useRecordingTracer } from './rpc-span.ts';

export { extractContext, injectContext, injectSpan } from './grpc-metadata-carrier.ts';
export { endRpcSpan, grpcCodeOf, inChildSpan, inSpan, spanLogFields, spansRecorded, startClientSpan, startStreamSpan, traceUnary } from './rpc-span.ts';
export { captureContext, runInContext, untraced } from './batch-context.ts';

const TRACER_NAME = 'etcd-tree';

let provider: NodeTracerProvider | undefined;

/**
 * Whether the standard OpenTelemetry variables ask for OTLP span export: an endpoint is set and
 * OTEL_TRACES_EXPORTER does not say 'none'.
 */
export function otlpExportRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

function install(serviceName: string, attributes: Record<string, string>, processors: SpanProcessor[]): void {
  uninstall();
  const resource = defaultResource().merge(resourceFromAttributes({ ...attributes, [ATTR_SERVICE_NAME]: serviceName }));
  const created = new NodeTracerProvider({ resource, spanProcessors: processors });
  // With span recording, the AsyncLocalStorage context manager carries the active span across
  // awaits (child spans for SQL, Redis and child nodes; ids in every log line). Without it, that
  // manager would cost every promise of every request about a quarter of the server's CPU for
  // nothing recorded: request code gets its span passed in instead (traceUnary).
  created.register({ propagator: new W3CTraceContextPropagator(), contextManager: processors.length > 0 ? undefined : null });
  provider = created;
  // With no processor a recorded span would be built only to be dropped: use pass-through spans.
  useRecordingTracer(processors.length > 0 ? created.getTracer(TRACER_NAME) : undefined);
}

/** Detaches the current provider from the API globals; returns it for shutdown. */
function uninstall(): NodeTracerProvider | undefined {
  const previous = provider;
  provider = undefined;
  useRecordingTracer(undefined);
  trace.disable();
  context.disable();
  propagation.disable();
  return previous;
}

/**
 * Sets up tracing for this process. Call once at startup, before serving. `attributes` are extra
 * resource attributes (e.g. { 'service.instance.id': nodeName }). OTEL_SDK_DISABLED=true skips
 * everything (no context propagation, no trace ids in logs).
 */
export function initTracing(serviceName: string, attributes: Record<string, string> = {}): void {
  if (process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') {
    void uninstall()?.shutdown();
    return;
  }
  // The exporter reads the endpoint, headers and timeout from the OTEL_EXPORTER_OTLP_* variables.
  const processors = otlpExportRequested() ? [new BatchSpanProcessor(new OTLPTraceExporter())] : [];
  install(serviceName, attributes, processors);
}

/** Flushes pending spans (bounded by the exporter's timeout) and detaches tracing. */
export async function shutdownTracing(): Promise<void> {
  await uninstall()?.shutdown();
}

/**
 * For tests: records every span synchronously into the returned in-memory exporter
 * (`getFinishedSpans()`, `reset()`). Replaces any earlier setup.
 */
export function initTracingForTest(serviceName = 'etcd-tree-test'): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter();
  install(serviceName, {}, [new SimpleSpanProcessor(exporter)]);
  return exporter;
}
