// One etcd-tree node: topology -> leaves -> allocator, feeds, router, lessor -> gRPC + HTTP.

import { readFileSync } from 'node:fs';
import type { NodeConfig } from './config/node-config.ts';
import { clusterService } from './etcd/cluster-service.ts';
import { bind, createGrpcServer, serverCredentials, StreamRegistry, type TlsFiles } from './etcd/grpc-server.ts';
import { idFromName, makeHeader, type NodeIdentity } from './etcd/header.ts';
import { kvService } from './etcd/kv-service.ts';
import { leaseService } from './etcd/lease-service.ts';
import { maintenanceService } from './etcd/maintenance-service.ts';
import { watchService } from './etcd/watch-service.ts';
import { Lessor } from './lease/lessor.ts';
import { MemoryAllocator } from './revision/memory-allocator.ts';
import { RouteTable } from './router/route-table.ts';
import { Router } from './router/router.ts';
import { SqliteDialect } from './store/dialects/sqlite/sqlite-dialect.ts';
import type { LeafStore } from './store/leaf-store.ts';
import { MvccStore } from './store/mvcc-store.ts';
import { startHttpServer, type RunningHttpServer } from './telemetry/http-server.ts';
import { log } from './telemetry/logger.ts';
import { initTracing, shutdownTracing } from './telemetry/tracing.ts';
import { loadTopology, type Backend } from './topology/load-topology.ts';
import type { Feed } from './watch/feed.ts';
import { LeafFeed } from './watch/leaf-feed.ts';

export interface RunningNode {
  /** host:port actually bound, per listen URL. */
  clientAddresses: string[];
  stop(): Promise<void>;
}

/** How long in-flight unary calls may take to finish on shutdown before they are cut. */
const SHUTDOWN_GRACE_MS = 5000;

function openLeaf(backend: Backend, allocator: MemoryAllocator): MvccStore {
  const dialect = new SqliteDialect({ path: backend.path });
  return new MvccStore(backend.name, dialect, allocator, { tablePrefix: backend.table ? `${backend.table}_` : '' });
}

function hostPortOf(url: string): { hostPort: string; tls: boolean } {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`listen URL ${url} must be http:// or https://`);
  return { hostPort: `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`, tls: u.protocol === 'https:' };
}

export async function startNode(config: NodeConfig): Promise<RunningNode> {
  initTracing('etcd-tree', { 'etcd_tree.node': config.name });
  const topology = loadTopology(config.topologyDir, config.dataDir);
  const allocator = new MemoryAllocator();
  const leaves = new Map<string, MvccStore>();
  for (const backend of topology.backends.values()) leaves.set(backend.name, openLeaf(backend, allocator));
  for (const leaf of leaves.values()) await leaf.open();

  // Revisions continue where the leaves stopped (etcd starts an empty store at revision 1).
  let floor = 1;
  for (const leaf of leaves.values()) floor = Math.max(floor, await leaf.headRevision());
  await allocator.seed(floor);

  const routes = new RouteTable(topology.routes.map((r) => ({ prefix: Buffer.from(r.prefix), leaf: leaves.get(r.to)! })));
  const feeds = new Map<LeafStore, Feed>();
  const leafFeeds: LeafFeed[] = [];
  for (const leaf of leaves.values()) {
    const feed = new LeafFeed(leaf, allocator);
    await feed.start();
    feeds.set(leaf, feed);
    leafFeeds.push(feed);
  }
  let lessor: Lessor | undefined;
  const router = new Router({ routes, allocator, feeds, leaseExists: (id) => lessor!.exists(id) });
  // Leases live in the catch-all's leaf.
  lessor = new Lessor(routes.leafFor(Buffer.alloc(0)), router);
  await lessor.start();

  const identity: NodeIdentity = {
    name: config.name,
    clusterId: idFromName(`cluster:${config.advertiseClientUrls.join(',')}`),
    memberId: idFromName(`member:${config.name}:${config.advertiseClientUrls.join(',')}`),
    clientUrls: config.advertiseClientUrls,
  };
  const header = makeHeader(identity);
  const streams = new StreamRegistry();
  const server = createGrpcServer(config.maxRequestBytes, {
    KV: kvService(router, header, { maxRequestBytes: config.maxRequestBytes, maxTxnOps: config.maxTxnOps }),
    Watch: watchService(router, header, { progressNotifyIntervalMs: config.progressNotifyIntervalMs, maxRequestBytes: config.maxRequestBytes, maxQueuedPerWatcher: 10_000 }, streams.track),
    Lease: leaseService(lessor, router, header, streams.track),
    Maintenance: maintenanceService(router, header, identity),
    Cluster: clusterService(header, identity),
  });

  const tls: TlsFiles | null = config.certFile && config.keyFile
    ? { cert: readFileSync(config.certFile), key: readFileSync(config.keyFile), ca: config.trustedCaFile ? readFileSync(config.trustedCaFile) : null, clientCertAuth: config.clientCertAuth }
    : null;
  const clientAddresses: string[] = [];
  for (const url of config.listenClientUrls) {
    const { hostPort, tls: wantsTls } = hostPortOf(url);
    const port = await bind(server, hostPort, serverCredentials(wantsTls ? tls : null));
    clientAddresses.push(hostPort.replace(/:\d+$/, `:${port}`));
  }
  let ready = true;
  const http: RunningHttpServer[] = [];
  for (const url of config.listenMetricsUrls) http.push(await startHttpServer({ url, isReady: () => ready }));
  log.info({ clientAddresses, leaves: [...leaves.keys()], revision: floor }, 'etcd-tree node serving');

  let stopping: Promise<void> | null = null;
  return {
    clientAddresses,
    stop() {
      stopping ??= (async () => {
        ready = false;
        log.info('shutting down: ending streams, finishing in-flight requests');
        streams.endAll();
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, SHUTDOWN_GRACE_MS);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        lessor!.stop();
        for (const feed of leafFeeds) feed.stop();
        for (const leaf of leaves.values()) await leaf.close();
        await allocator.close();
        for (const h of http) await h.close();
        await shutdownTracing();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}


