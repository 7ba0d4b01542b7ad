// Prometheus metrics of a node, served on /metrics by http-server.ts.
// RPC metrics follow go-grpc-prometheus naming (grpc_service, grpc_method, grpc_code with Go's
// code names), the labels etcd's own dashboards and alerts are written against.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { rpcMethod } from './rpc-method.ts';

/** How often the event-loop delay metrics (nodejs_eventloop_lag_*) take a sample. */
export const EVENT_LOOP_SAMPLE_MS = 100;

export const registry = new Registry();
// The event-loop delay is sampled every 100 ms, not prom-client's default 10 ms: that timer woke
// an idle node 100 times a second and was most of its idle CPU (4.5 ms per second, against 1 ms).
collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });

/** Prometheus text exposition content type, for the /metrics response. */
export const contentType: string = registry.contentType;

// From 50 µs (a cached read) to 5 s (a stalled leaf or a long linearizable wait).
const RPC_BUCKETS_SECONDS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

// Index = numeric gRPC status code; names as Go's codes.Code.String() prints them.
const GRPC_CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange',
  'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
];

export const metrics = {
  rpcDuration: new Histogram({
    name: 'etcd_tree_grpc_server_handling_seconds',
    help: 'Time from receiving an RPC to sending its response (unary) or closing it (streams).',
    labelNames: ['grpc_service', 'grpc_method', 'grpc_code'] as const,
    buckets: RPC_BUCKETS_SECONDS,
    registers: [registry],
  }),
  rpcStarted: new Counter({
    name: 'etcd_tree_grpc_server_started_total',
    help: 'RPCs started on the server.',
    labelNames: ['grpc_service', 'grpc_method'] as const,
    registers: [registry],
    // startRpc only bumps a plain number; the counter catches up when scraped.
    collect: () => flushStartedCounts(),
  }),
  watchersGauge: new Gauge({
    name: 'etcd_tree_watchers',
    help: 'Watches currently open, over all watch streams.',
    registers: [registry],
  }),
  watchStreamsGauge: new Gauge({
    name: 'etcd_tree_watch_streams',
    help: 'Watch gRPC streams currently open.',
    registers: [registry],
  }),
  pendingRevisionsGauge: new Gauge({
    name: 'etcd_tree_pending_revisions',
    help: 'Revisions allocated to the leaf and not yet resolved (committed or fenced).',
    labelNames: ['leaf'] as const,
    registers: [registry],
    async collect() {
      await setLeafGauge(this, 'pending');
    },
  }),
  watermarkLagGauge: new Gauge({
    name: 'etcd_tree_watermark_lag_revisions',
    help: "Revisions between the global revision counter and the leaf's watermark.",
    labelNames: ['leaf'] as const,
    registers: [registry],
    async collect() {
      await setLeafGauge(this, 'lag');
    },
  }),
  leafHeadRevisionGauge: new Gauge({
    name: 'etcd_tree_leaf_head_revision',
    help: 'Highest revision committed in the leaf.',
    labelNames: ['leaf'] as const,
    registers: [registry],
    async collect() {
      await setLeafGauge(this, 'head');
    },
  }),
  dbSizeGauge: new Gauge({
    name: 'etcd_tree_db_size_bytes',
    help: "Size of the leaf's database (or its tables), in bytes.",
    labelNames: ['leaf'] as const,
    registers: [registry],
    async collect() {
      await setLeafGauge(this, 'dbSize');
    },
  }),
};

/** One leaf's numbers for the per-leaf gauges, read when /metrics is scraped. */
export interface LeafSample {
  leaf: string;
  head: number;
  lag: number;
  pending: number;
  dbSize: number;
}

let leafSampler: (() => Promise<LeafSample[]>) | null = null;
/** The sample being taken for the scrape in progress, shared by the four gauges. */
let inFlight: Promise<LeafSample[]> | null = null;

/** The node registers where the per-leaf gauges read their values. */
export function setLeafSampler(sampler: (() => Promise<LeafSample[]>) | null): void {
  leafSampler = sampler;
  inFlight = null;
}

// The four per-leaf gauges share one sample per scrape.
async function setLeafGauge(gauge: Gauge<'leaf'>, field: Exclude<keyof LeafSample, 'leaf'>): Promise<void> {
  gauge.reset();
  if (!leafSampler) return;
  if (!inFlight) {
    const taken = leafSampler();
    inFlight = taken;
    // Every gauge of this scrape has asked by the time the sample is in; the next scrape samples anew.
    void taken.catch(() => undefined).finally(() => setImmediate(() => (inFlight = inFlight === taken ? null : inFlight)));
  }
  for (const s of await inFlight.catch(() => [])) gauge.set({ leaf: s.leaf }, s[field]);
}

// Per-method state, so the per-RPC path does no label assembly or hashing.
interface MethodMetrics {
  service: string;
  method: string;
  /** RPCs started since the last scrape; added to rpcStarted by flushStartedCounts. */
  unflushedStarts: number;
  durationByCode: Array<{ observe(seconds: number): void } | undefined>;
}
const perMethod = new Map<string, MethodMetrics>();

function methodMetrics(fullMethod: string): MethodMetrics {
  let entry = perMethod.get(fullMethod);
  if (entry === undefined) {
    const { service, method } = rpcMethod(fullMethod);
    entry = { service, method, unflushedStarts: 0, durationByCode: [] };
    perMethod.set(fullMethod, entry);
  }
  return entry;
}

function flushStartedCounts(): void {
  for (const entry of perMethod.values()) {
    if (entry.unflushedStarts === 0) continue;
    metrics.rpcStarted.labels(entry.service, entry.method).inc(entry.unflushedStarts);
    entry.unflushedStarts = 0;
  }
}

/** Counts an RPC as started and returns its start time, for observeRpc. */
export function startRpc(fullMethod: string): bigint {
  methodMetrics(fullMethod).unflushedStarts++;
  return process.hrtime.bigint();
}

/**
 * Records an RPC's duration. `fullMethod` as grpc-js gives it ("/etcdserverpb.KV/Range") or
 * without the leading slash; `startNs` from process.hrtime.bigint(); `code` the gRPC status code.
 */
export function observeRpc(fullMethod: string, startNs: bigint, code: number): void {
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
  const entry = methodMetrics(fullMethod);
  let observer = entry.durationByCode[code];
  if (observer === undefined) {
    observer = metrics.rpcDuration.labels(entry.service, entry.method, GRPC_CODE_NAMES[code] ?? String(code));
    entry.durationByCode[code] = observer;
  }
  observer.observe(seconds);
}

/** The registry in Prometheus text format. */
export function renderMetrics(): Promise<string> {
  return registry.metrics();
}
