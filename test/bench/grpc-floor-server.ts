// The transport floor, for calibrating the benchmark (BENCH_TARGETS=grpc-floor): a bare
// @grpc/grpc-js server with etcd-tree's server options and codecs, answering KV Range and Put
// from a plain in-memory map (no MVCC, no revisions beyond a counter, no durability, no
// validation, no tracing or metrics). It is not etcd and not etcd-tree: its CPU per operation
// is what grpc-js and node's HTTP/2 alone cost per call on this machine, a lower bound for any
// node built on them. Given an upstream, it is a bare proxy instead (grpc-floor-proxy): each call
// passed on as a unary call of its own, the plain way to add a hop.
// Run: node --import tsx test/bench/grpc-floor-server.ts PORT [UPSTREAM_HOST:PORT]
import * as grpc from '@grpc/grpc-js';
import { defaultConfig } from '../../src/config/node-config.ts';
import { measured, serverOptions } from '../../src/etcd/grpc-server.ts';
import { clientConstructor } from '../../src/etcd/proto/load.ts';

const port = Number(process.argv[2]);
const upstream = process.argv[3];
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: grpc-floor-server.ts PORT [UPSTREAM_HOST:PORT]');

interface Kv { key: Buffer; create_revision: number; mod_revision: number; version: number; value: Buffer; lease: number }
const kvs = new Map<string, Kv>();
let revision = 1;
const header = () => ({ cluster_id: 1, member_id: 1, revision, raft_term: 1 });

type Unary = grpc.handleUnaryCall<any, any>;
const range: Unary = (call, callback) => {
  const req = call.request as { key: Buffer; range_end: Buffer; limit: number; count_only: boolean };
  if (req.range_end.length === 0) {
    const kv = kvs.get(req.key.toString('latin1'));
    callback(null, { header: header(), kvs: kv && !req.count_only ? [kv] : [], more: false, count: kv ? 1 : 0 });
    return;
  }
  // Ranges in key order (a sort per call: a floor for small ranges only; the bench's lists are not what this is for).
  const lo = req.key.toString('latin1');
  const hi = req.range_end.equals(Buffer.from([0])) ? null : req.range_end.toString('latin1');
  const found = [...kvs.entries()].filter(([k]) => k >= lo && (hi === null || k < hi)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([, kv]) => kv);
  const page = req.limit > 0 ? found.slice(0, req.limit) : found;
  callback(null, { header: header(), kvs: req.count_only ? [] : page, more: page.length < found.length, count: found.length });
};
const put: Unary = (call, callback) => {
  const req = call.request as { key: Buffer; value: Buffer; lease: number };
  const id = req.key.toString('latin1');
  const before = kvs.get(id);
  revision++;
  kvs.set(id, { key: req.key, value: req.value, lease: req.lease, create_revision: before?.create_revision ?? revision, mod_revision: revision, version: (before?.version ?? 0) + 1 });
  callback(null, { header: header() });
};
const status: Unary = (_call, callback) => callback(null, { header: header(), version: 'grpc-floor' });

// The node's own server options and service definitions (its request decoding and response encoding).
const server = new grpc.Server(serverOptions(defaultConfig().maxRequestBytes));
let handlers: { Range: Unary; Put: Unary; Status: Unary } = { Range: range, Put: put, Status: status };
if (upstream) {
  const client = (service: 'KV' | 'Maintenance') => new (clientConstructor(service))(upstream, grpc.credentials.createInsecure(), { 'grpc.enable_channelz': 0 }) as unknown as Record<string, Function>;
  const kvClient = client('KV');
  const maintenance = client('Maintenance');
  const pass = (c: Record<string, Function>, method: string): Unary => (call, callback) => c[method].call(c, call.request, callback);
  handlers = { Range: pass(kvClient, 'Range'), Put: pass(kvClient, 'Put'), Status: pass(maintenance, 'Status') };
}
server.addService(measured('KV'), { Range: handlers.Range, Put: handlers.Put });
server.addService(measured('Maintenance'), { Status: handlers.Status });
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
