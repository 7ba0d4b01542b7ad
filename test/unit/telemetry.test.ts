import * as grpc from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { metadataOf } from '../../src/child/call-context.ts';
import { startHttpServer } from '../../src/telemetry/http-server.ts';
import { traceFields } from '../../src/telemetry/logger.ts';
import { observeRpc, renderMetrics, startRpc } from '../../src/telemetry/metrics.ts';
import {
  initTracing,
  initTracingForTest,
  injectContext,
  injectSpan,
  spanLogFields,
  otlpExportRequested,
  shutdownTracing,
  traceUnary,
} from '../../src/telemetry/tracing.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';

function metadataWithTraceparent(flags = '01'): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('traceparent', `00-${TRACE_ID}-${PARENT_SPAN_ID}-${flags}`);
  return metadata;
}

function grpcError(code: number, details: string): Error & { code: number; details: string } {
  return Object.assign(new Error(`${code} ${details}`), { code, details });
}

describe('tracing with a recording exporter', () => {
  let exporter: InMemorySpanExporter;
  beforeAll(() => { exporter = initTracingForTest(); });
  beforeEach(() => exporter.reset());
  afterAll(() => shutdownTracing());

  it('continues an incoming traceparent: same trace id, caller span as parent', async () => {
    let activeTraceId: string | undefined;
    const result = await traceUnary('/etcdserverpb.KV/Range', metadataWithTraceparent(), async () => {
      activeTraceId = trace.getActiveSpan()?.spanContext().traceId;
      return 42;
    });
    expect(result).toBe(42);
    expect(activeTraceId).toBe(TRACE_ID);
    const [span, ...others] = exporter.getFinishedSpans();
    expect(others).toHaveLength(0);
    expect(span.name).toBe('etcdserverpb.KV/Range');
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(PARENT_SPAN_ID);
    expect(span.attributes).toMatchObject({ 'rpc.system': 'grpc', 'rpc.service': 'etcdserverpb.KV', 'rpc.method': 'Range', 'rpc.grpc.status_code': 0 });
  });

  it('starts a new trace when the caller sent none', async () => {
    await traceUnary('/etcdserverpb.KV/Put', new grpc.Metadata(), async () => undefined);
    const [span] = exporter.getFinishedSpans();
    expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(span.parentSpanContext).toBeUndefined();
  });

  it('marks server failures as errors and rethrows the error unchanged', async () => {
    const thrown = grpcError(grpc.status.UNAVAILABLE, 'leaf down');
    await expect(traceUnary('/etcdserverpb.KV/Txn', new grpc.Metadata(), async () => { throw thrown; })).rejects.toBe(thrown);
    const [span] = exporter.getFinishedSpans();
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'leaf down' });
    expect(span.attributes['rpc.grpc.status_code']).toBe(grpc.status.UNAVAILABLE);
    expect(span.events.map((e) => e.name)).toContain('exception');
  });

  it('leaves the status unset for answers like OutOfRange (compacted)', async () => {
    await expect(traceUnary('/etcdserverpb.KV/Range', new grpc.Metadata(), async () => {
      throw grpcError(grpc.status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted');
    })).rejects.toThrow();
    const [span] = exporter.getFinishedSpans();
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.attributes['rpc.grpc.status_code']).toBe(grpc.status.OUT_OF_RANGE);
  });

  it('treats errors without a numeric code as Unknown', async () => {
    await expect(traceUnary('/etcdserverpb.KV/Range', new grpc.Metadata(), async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    const [span] = exporter.getFinishedSpans();
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['rpc.grpc.status_code']).toBe(grpc.status.UNKNOWN);
  });

  it('injects the active span into outgoing metadata, for calls to child nodes', async () => {
    const outgoing = new grpc.Metadata();
    let spanId: string | undefined;
    await traceUnary('/etcdserverpb.KV/Range', metadataWithTraceparent(), async () => {
      spanId = trace.getActiveSpan()?.spanContext().spanId;
      injectContext(outgoing);
    });
    expect(outgoing.get('traceparent')).toEqual([`00-${TRACE_ID}-${spanId}-01`]);
  });

  it('puts trace and span ids into log lines written inside the span', async () => {
    expect(traceFields()).toEqual({});
    let fields: Record<string, string> = {};
    let spanId: string | undefined;
    await traceUnary('/etcdserverpb.KV/Range', metadataWithTraceparent(), async () => {
      await new Promise((r) => setImmediate(r)); // the context must survive an await
      spanId = trace.getActiveSpan()?.spanContext().spanId;
      fields = traceFields();
    });
    expect(fields).toEqual({ trace_id: TRACE_ID, span_id: spanId });
  });
});

describe('tracing without an exporter (pass-through)', () => {
  const saved = { ...process.env };
  beforeAll(() => {
    for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_SDK_DISABLED']) delete process.env[name];
    initTracing('etcd-tree-unit');
  });
  afterAll(async () => {
    await shutdownTracing();
    process.env = saved;
  });

  it('still gives each RPC its own span id within the caller trace', async () => {
    const outgoing: Record<string, string> = {};
    let fields: Record<string, string> = {};
    await traceUnary('/etcdserverpb.KV/Range', metadataWithTraceparent(), async (span) => {
      fields = spanLogFields(span);
      injectSpan(outgoing, span);
      // No context manager runs without an exporter: nothing is "active".
      expect(traceFields()).toEqual({});
    });
    expect(fields.trace_id).toBe(TRACE_ID);
    expect(fields.span_id).toMatch(/^[0-9a-f]{16}$/);
    expect(fields.span_id).not.toBe(PARENT_SPAN_ID);
    // The caller's sampling decision travels on unchanged.
    expect(metadataOf(outgoing).get('traceparent')).toEqual([`00-${TRACE_ID}-${fields.span_id}-01`]);
  });

  it('starts a new trace id for requests without a traceparent', async () => {
    let fields: Record<string, string> = {};
    await traceUnary('/etcdserverpb.KV/Range', new grpc.Metadata(), async (span) => { fields = spanLogFields(span); });
    expect(fields.trace_id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('exports only when an OTLP endpoint is configured and the exporter is not none', () => {
    expect(otlpExportRequested({})).toBe(false);
    expect(otlpExportRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(otlpExportRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(otlpExportRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
  });
});

describe('metrics', () => {
  it('renders the RPC histogram after observeRpc, with go-grpc-prometheus labels', async () => {
    const start = startRpc('/etcdserverpb.KV/Range');
    observeRpc('/etcdserverpb.KV/Range', start, grpc.status.OK);
    observeRpc('etcdserverpb.KV/Range', start, grpc.status.OUT_OF_RANGE);
    const text = await renderMetrics();
    expect(text).toContain('# TYPE etcd_tree_grpc_server_handling_seconds histogram');
    expect(text).toContain('etcd_tree_grpc_server_handling_seconds_count{grpc_service="etcdserverpb.KV",grpc_method="Range",grpc_code="OK"} 1');
    expect(text).toContain('etcd_tree_grpc_server_handling_seconds_count{grpc_service="etcdserverpb.KV",grpc_method="Range",grpc_code="OutOfRange"} 1');
    expect(text).toMatch(/etcd_tree_grpc_server_handling_seconds_bucket\{le="0.00005",grpc_service="etcdserverpb.KV"/);
    expect(text).toContain('etcd_tree_grpc_server_started_total{grpc_service="etcdserverpb.KV",grpc_method="Range"} 1');
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('# TYPE etcd_tree_watchers gauge');
  });
});

describe('http server', () => {
  let ready = false;
  let server: Awaited<ReturnType<typeof startHttpServer>>;
  let base: string;
  beforeAll(async () => {
    server = await startHttpServer({ url: 'http://127.0.0.1:0', isReady: () => ready });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(() => server.close());

  it('answers /healthz while the process runs', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
  });

  it('answers /readyz with 503 until ready, then 200', async () => {
    const before = await fetch(`${base}/readyz`);
    expect(before.status).toBe(503);
    expect(await before.text()).toBe('not ready\n');
    ready = true;
    const after = await fetch(`${base}/readyz?verbose`);
    expect(after.status).toBe(200);
    expect(await after.text()).toBe('ok\n');
  });

  it('serves /metrics in Prometheus text format', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toContain('etcd_tree_grpc_server_handling_seconds');
  });

  it('answers unknown paths with 404 and other methods with 405', async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
  });

  it('reports why readiness failed when the check throws', async () => {
    const failing = await startHttpServer({ url: 'http://127.0.0.1:0', isReady: async () => { throw new Error('redis unreachable'); } });
    try {
      const res = await fetch(`http://127.0.0.1:${failing.port}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.text()).toBe('not ready: redis unreachable\n');
    } finally {
      await failing.close();
    }
  });
});
