// The etcd endpoint the Kubernetes servers run against: a parameter of the harness, so later
// topologies (SQL leaves, several nodes, trees) run the same scenarios by adding a target here.
//
// K8S_E2E_TARGETS=etcd-tree,etcd35 selects targets (default: etcd-tree):
//  - etcd-tree: one node, plaintext (the default);
//  - etcd-tree-tls: one node serving https with client-certificate auth; the servers get
//    --etcd-servers=https://... --etcd-cafile --etcd-certfile --etcd-keyfile;
//  - etcd-tree-mixed, etcd-tree-2-nodes, etcd-tree-3-levels: SQL leaves, two nodes, a tree;
//  - etcd35: a real etcd 3.5 (shared/tools/etcd35), to check the tests themselves: whatever
//    passes there and fails on etcd-tree is an etcd-tree bug.
import * as grpc from '@grpc/grpc-js';
import { readFileSync, rmSync } from 'node:fs';
import { connectExact } from '../../../conformance/exact-client.ts';
import { generatePki } from '../../../integration/helpers/certs.ts';
import { connectEtcd, type EtcdClient } from '../../../support/etcd-client.ts';
import { startEtcdTree, type StartOptions } from '../../../support/etcd-tree-process.ts';
import { freePort } from '../../../support/ports.ts';
import { startRealEtcd } from '../../../support/real-etcd.ts';
import { startCluster } from '../../../support/cluster.ts';
import { startSqlNode } from '../../../support/sql-backends.ts';
import { startTree } from '../../../support/tree.ts';
import { killWithWorker } from './server-process.ts';

export interface EtcdTls {
  /** CA that signed the server certificate (kube-apiserver --etcd-cafile). */
  ca: string;
  /** Client certificate and key (--etcd-certfile, --etcd-keyfile). */
  cert: string;
  key: string;
}

/** A running etcd (or etcd-tree topology) as kube-apiserver sees it. */
export interface EtcdUnderTest {
  /** host:port of every client endpoint; the servers get them as --etcd-servers=http(s)://... */
  endpoints: string[];
  /** Set when the endpoints serve https with client-certificate auth. */
  tls?: EtcdTls;
  /** A gRPC client for direct checks (int64s exact: real etcd's lease IDs are ~2^62). */
  connect(): EtcdClient;
  /** Recent server output, shown when a scenario fails. */
  output(): string;
  /** Stops every process and removes every temp dir. */
  stop(): Promise<void>;
}

export interface EtcdTarget {
  name: string;
  start(): Promise<EtcdUnderTest>;
}

/**
 * All targets run with etcd's default periodic progress-notify interval (10 m), not the 1 s the
 * other suites use: a watch cache that catches up within a second can then only have learned
 * the revision from an answer to RequestProgress, which is what the consistent-read and
 * WatchList scenarios must prove.
 */
export const PROGRESS_NOTIFY_INTERVAL = '10m';
const progressArgs = ['--experimental-watch-progress-notify-interval', PROGRESS_NOTIFY_INTERVAL];

/** One etcd-tree node (test/support startEtcdTree) on the embedded default topology (one SQLite catch-all). */
export function etcdTreeTarget(opts: StartOptions = {}, name = 'etcd-tree'): EtcdTarget {
  return {
    name,
    async start() {
      const node = await startEtcdTree({ ...opts, args: [...progressArgs, ...(opts.args ?? [])] });
      killWithWorker(node.process);
      return { endpoints: [node.endpoint], connect: () => connectExact(node.endpoint), output: () => node.output(), stop: () => node.destroy() };
    },
  };
}

/** One etcd-tree node serving https, requiring client certificates (openssl throwaway PKI). */
export function etcdTreeTlsTarget(name = 'etcd-tree-tls'): EtcdTarget {
  return {
    name,
    async start() {
      const pki = generatePki();
      try {
        const port = await freePort();
        // startEtcdTree passes --listen-client-urls http://...; the later flag wins.
        const node = await startEtcdTree({
          port,
          args: [
            ...progressArgs,
            '--listen-client-urls', `https://127.0.0.1:${port}`,
            '--advertise-client-urls', `https://127.0.0.1:${port}`,
            '--cert-file', pki.serverCert, '--key-file', pki.serverKey,
            '--trusted-ca-file', pki.ca, '--client-cert-auth',
          ],
        });
        killWithWorker(node.process);
        const tls = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
        // etcd-tree's lease IDs stay below 2^53, so the plain client is exact here.
        const credentials = () => grpc.credentials.createSsl(readFileSync(tls.ca), readFileSync(tls.key), readFileSync(tls.cert));
        return {
          endpoints: [node.endpoint],
          tls,
          connect: () => connectEtcd(node.endpoint, { credentials: credentials() }),
          output: () => node.output(),
          async stop() {
            await node.destroy();
            rmSync(pki.dir, { recursive: true, force: true });
          },
        };
      } catch (err) {
        rmSync(pki.dir, { recursive: true, force: true });
        throw err;
      }
    },
  };
}

/** A real etcd 3.5, the reference. */
export function realEtcdTarget(): EtcdTarget {
  return {
    name: 'etcd35',
    async start() {
      const etcd = await startRealEtcd({ progressNotifyInterval: PROGRESS_NOTIFY_INTERVAL });
      killWithWorker(etcd.process);
      return { endpoints: [etcd.endpoint], connect: () => connectExact(etcd.endpoint), output: () => '', stop: () => etcd.stop() };
    },
  };
}

/**
 * One node on the mixed topology: the default SQLite leaf, Events in PostgreSQL, the CRDs'
 * objects (example.com group, see scenarios/custom-resources.ts) in MariaDB.
 */
export function etcdTreeMixedTarget(name = 'etcd-tree-mixed'): EtcdTarget {
  return {
    name,
    async start() {
      const node = await startSqlNode(
        {
          '00.yaml': [
            'backends:',
            '  local:',
            '    kind: sqlite',
            '    path: default.db',
            '{{pg:events}}',
            '{{mysql:crds}}',
            'routes:',
            '  - { prefix: "", to: local }',
            '  - { prefix: /registry/events/, to: events }',
            '  - { prefix: /registry/apiextensions.kubernetes.io/, to: crds }',
            '',
          ].join('\n'),
        },
        { args: progressArgs },
      );
      killWithWorker(node.process);
      return { endpoints: [node.endpoint], connect: () => connectExact(node.endpoint), output: () => node.output(), stop: () => node.destroyAll() };
    },
  };
}

/** Two nodes over a shared PostgreSQL leaf and Redis revisions; the servers get both endpoints. */
export function etcdTreeTwoNodesTarget(name = 'etcd-tree-2-nodes'): EtcdTarget {
  return {
    name,
    async start() {
      const cluster = await startCluster({ nodes: 2, leaves: { pg: 'postgres' }, args: progressArgs });
      for (const n of cluster.nodes) killWithWorker(n.process);
      return {
        endpoints: cluster.nodes.map((n) => n.endpoint),
        connect: () => connectExact(cluster.nodes[0].endpoint),
        output: () => cluster.nodes.map((n) => n.output()).join('\n'),
        stop: () => cluster.destroy(),
      };
    },
  };
}

const known: Record<string, () => EtcdTarget> = {
  'etcd-tree': () => etcdTreeTarget(),
  'etcd-tree-tls': () => etcdTreeTlsTarget(),
  'etcd-tree-mixed': () => etcdTreeMixedTarget(),
  'etcd-tree-2-nodes': () => etcdTreeTwoNodesTarget(),
  'etcd-tree-3-levels': () => etcdTreeThreeLevelsTarget(),
  etcd35: realEtcdTarget,
};

/**
 * The root of the 3-level test tree (test/support/tree.ts): events under branch A, pods sharded
 * by namespace over MariaDB and PostgreSQL under branch B, configmaps sharded over both
 * branches, everything else in branch B's SQLite.
 */
export function etcdTreeThreeLevelsTarget(name = 'etcd-tree-3-levels'): EtcdTarget {
  return {
    name,
    async start() {
      const tree = await startTree({ args: progressArgs });
      for (const n of Object.values(tree.nodes)) killWithWorker(n.process);
      return {
        endpoints: [tree.root.endpoint],
        connect: () => connectExact(tree.root.endpoint),
        output: () => Object.entries(tree.nodes).map(([n, node]) => `--- ${n}\n${node.output()}`).join('\n'),
        stop: () => tree.destroy(),
      };
    },
  };
}

/** What `npm test` runs: the embedded default, the mixed topology, two nodes, a 3-level tree. */
const DEFAULT_TARGETS = 'etcd-tree,etcd-tree-mixed,etcd-tree-2-nodes,etcd-tree-3-levels';

export function selectTargets(env = process.env.K8S_E2E_TARGETS): EtcdTarget[] {
  const names = (env ?? DEFAULT_TARGETS).split(',').map((s) => s.trim()).filter(Boolean);
  return names.map((n) => {
    const make = known[n];
    if (!make) throw new Error(`K8S_E2E_TARGETS: unknown target ${n} (known: ${Object.keys(known).join(', ')})`);
    return make();
  });
}
