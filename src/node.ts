// One etcd-tree node: topology -> leaves -> allocator, feeds, router, lessor -> gRPC + HTTP.

import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import type { NodeConfig } from './config/node-config.ts';
import { clusterService } from './etcd/cluster-service.ts';
import { listenPlaintext } from './etcd/authority-repair.ts';
import { bind, createGrpcServer, serverCredentials, StreamRegistry, type TlsFiles } from './etcd/grpc-server.ts';
import { idFromName, makeHeader, type NodeIdentity } from './etcd/header.ts';
import { kvService } from './etcd/kv-service.ts';
import { leaseService } from './etcd/lease-service.ts';
import { maintenanceService } from './etcd/maintenance-service.ts';
import { watchService } from './etcd/watch-service.ts';
import type { LeaseRegistry } from './lease/lease-registry.ts';
import { LeafLessor } from './lease/leaf-lessor.ts';
import { RedisLessor } from './lease/redis-lessor.ts';
import { Fencer } from './revision/fencer.ts';
import { GenerationKeeper } from './revision/generation-keeper.ts';
import { MemoryAllocator } from './revision/memory-allocator.ts';
import { RedisAllocator } from './revision/redis-allocator.ts';
import { findHiddenKeys } from './router/hidden-keys.ts';
import { TargetRegistry } from './router/target-registry.ts';
import type { LeaseHome } from './router/target.ts';
import { treeServiceImpl } from './etcd/tree-service.ts';
import { Router } from './router/router.ts';
import { startHttpServer, type RunningHttpServer } from './telemetry/http-server.ts';
import { log } from './telemetry/logger.ts';
import { setLeafSampler } from './telemetry/metrics.ts';
import { initTracing, shutdownTracing } from './telemetry/tracing.ts';
import { watchTopology } from './topology/hot-reload.ts';
import { loadTopology, type Topology } from './topology/load-topology.ts';

export interface RunningNode {
  /** host:port actually bound, per listen URL. */
  clientAddresses: string[];
  stop(): Promise<void>;
}

/** How long in-flight unary calls may take to finish on shutdown before they are cut. */
const SHUTDOWN_GRACE_MS = 5000;

function listenAddressOf(url: string): { host: string; port: number; tls: boolean } {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`listen URL ${url} must be http:// or https://`);
  return { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)), tls: u.protocol === 'https:' };
}

/** A child backend pointing at this node's own listen address would route requests in a circle. */
function refuseSelfReference(topology: Topology, listenUrls: string[]): void {
  const own = new Set(listenUrls.map((u) => new URL(u).host));
  for (const b of topology.backends.values()) {
    const self = b.kind === 'node' ? b.endpoints.find((e) => own.has(new URL(e).host)) : undefined;
    if (self) throw new Error(`backend "${b.name}" (${b.definedAt}) is this node itself (${self}): a child must be another node`);
  }
}

export async function startNode(config: NodeConfig): Promise<RunningNode> {
  initTracing('etcd-tree', { 'etcd_tree.node': config.name });
  const topology = loadTopology(config.topologyDir, config.dataDir);
  if (config.revisionStore === 'memory' && [...topology.backends.values()].some((b) => b.kind === 'node')) {
    throw new Error('child nodes (kind: node) need --revision-store redis://..., the Redis the whole tree shares');
  }
  refuseSelfReference(topology, config.listenClientUrls);
  const isRoot = config.treeRole === 'root';
  const redis = config.revisionStore === 'memory' ? null : new RedisAllocator({ url: config.revisionStore, keyPrefix: config.revisionPrefix, deadlineMs: config.revisionDeadlineMs });
  const allocator = redis ?? new MemoryAllocator();
  const registry = new TargetRegistry(allocator);
  const opened = await registry.openAll(topology);
  await registry.adopt(opened);
  let lessor: LeaseRegistry | undefined;
  const router = new Router({
    routes: TargetRegistry.routesOf(topology, opened),
    allocator,
    feeds: TargetRegistry.feedsOf(opened),
    leaseExists: (id) => lessor!.exists(id),
    ensureLeases: (ids) => lessor!.ensureKnown(ids),
  });
  // With Redis: a trustworthy counter before any write, kept so (Redis may restart empty), and
  // revisions of crashed writers fenced within the deadline.
  const keeper = redis ? new GenerationKeeper(redis, () => router.targets(), isRoot) : null;
  await keeper?.ensure().catch((err) => log.warn({ err: { message: (err as Error).message } }, 'revision generation not established yet; writes answer UNAVAILABLE until it is'));
  keeper?.start();
  const fencer = redis ? new Fencer(redis, () => registry.stores(), Math.max(100, config.revisionDeadlineMs / 4)) : null;
  fencer?.start();

  // Opening seeded the allocator: revisions continue where the leaves stopped.
  const floor = await allocator.current();

  // Lease records are persisted by the catch-all's target (a leaf, or a child's home leaf), with
  // Redis too (Redis may lose them); with several nodes deadlines and keep-alives live in Redis.
  const home = router.routeTable.targetFor(Buffer.alloc(0)) as unknown as LeaseHome;
  lessor = redis
    ? new RedisLessor(home, router, { url: config.revisionStore, keyPrefix: config.revisionPrefix, nodeName: config.name, expiryChecks: isRoot })
    : new LeafLessor(home, router);
  await lessor.start();

  // Hot reload: open the new leaves, refuse a table that would hide existing keys, swap.
  const applyTopology = async (next: Topology) => {
    refuseSelfReference(next, config.listenClientUrls);
    const leaves = await registry.openAll(next);
    const table = TargetRegistry.routesOf(next, leaves);
    const hidden = await findHiddenKeys(router.routeTable, table, allocator).catch(async (err) => {
      await registry.discard(leaves);
      throw err;
    });
    if (hidden.length > 0) {
      await registry.discard(leaves);
      const what = hidden.map((h) => `prefix "${h.prefix}": ${h.count} key(s) in leaf ${h.leaf}`).join('; ');
      throw new Error(`the new topology would hide existing keys (${what}); move or delete them first`);
    }
    router.setRoutes(table, TargetRegistry.feedsOf(leaves));
    await registry.adopt(leaves);
    log.info({ routes: next.routes.map((r) => ({ prefix: r.prefix, to: r.to })) }, 'topology reloaded');
  };
  const topologyWatcher = watchTopology(config.topologyDir, config.dataDir, applyTopology);

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
  }, treeServiceImpl(router, () => home), streams.track);

  const tls: TlsFiles | null = config.certFile && config.keyFile
    ? { cert: readFileSync(config.certFile), key: readFileSync(config.keyFile), ca: config.trustedCaFile ? readFileSync(config.trustedCaFile) : null, clientCertAuth: config.clientCertAuth }
    : null;
  const clientAddresses: string[] = [];
  const plaintextListeners: Server[] = [];
  for (const url of config.listenClientUrls) {
    const { host, port: wanted, tls: wantsTls } = listenAddressOf(url);
    let port: number;
    if (wantsTls) {
      port = await bind(server, `${host}:${wanted}`, serverCredentials(tls));
    } else {
      // Plaintext connections are accepted here first (see authority-repair.ts).
      const listening = await listenPlaintext(server, serverCredentials(null), host, wanted);
      plaintextListeners.push(listening.server);
      port = listening.port;
    }
    clientAddresses.push(`${host}:${port}`);
  }
  setLeafSampler(async () => {
    const current = await allocator.current();
    return Promise.all(
      router.leaves().map(async (leaf) => {
        const w = await allocator.watermark([leaf.name]);
        return { leaf: leaf.name, head: await leaf.headRevision(), lag: current - w, pending: await allocator.pendingCount(leaf.name), dbSize: await leaf.sizeBytes() };
      }),
    );
  });
  let ready = true;
  const http: RunningHttpServer[] = [];
  for (const url of config.listenMetricsUrls) http.push(await startHttpServer({ url, isReady: () => ready }));
  log.info({ clientAddresses, leaves: registry.stores().map((l) => l.name), revision: floor }, 'etcd-tree node serving');

  let stopping: Promise<void> | null = null;
  return {
    clientAddresses,
    stop() {
      stopping ??= (async () => {
        ready = false;
        log.info('shutting down: ending streams, finishing in-flight requests');
        for (const l of plaintextListeners) l.close();
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
        topologyWatcher.close();
        await topologyWatcher.settled();
        await lessor!.stop();
        keeper?.stop();
        fencer?.stop();
        setLeafSampler(null);
        await registry.closeAll();
        await allocator.close();
        for (const h of http) await h.close();
        await shutdownTracing();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}


