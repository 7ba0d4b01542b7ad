// The example tree in nodes/ stays valid, and the runner's start order, console lines and
// usage text follow from the node files.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consoleLine } from '../../src/tree/node-process.ts';
import { readTreeNodes, startOrder } from '../../src/tree/tree-nodes.ts';
import { describeTree, howToUse } from '../../src/tree/tree-summary.ts';

const examples = resolve(import.meta.dirname, '../../nodes');

describe('the example tree (nodes/)', () => {
  const nodes = readTreeNodes(examples);
  const byName = new Map(nodes.map((n) => [n.name, n]));

  it('has a root on 2379 and two branches, all on one Redis prefix, data under data/tree/<node>', () => {
    expect([...byName.keys()].sort()).toEqual(['branch-a', 'branch-b', 'root']);
    expect(byName.get('root')!.config).toMatchObject({ treeRole: 'root', listenClientUrls: ['http://127.0.0.1:2379'], listenMetricsUrls: ['http://127.0.0.1:2381'] });
    expect(byName.get('branch-a')!.config).toMatchObject({ treeRole: 'branch', listenClientUrls: ['http://127.0.0.1:23791'], listenMetricsUrls: ['http://127.0.0.1:23811'] });
    expect(byName.get('branch-b')!.config).toMatchObject({ treeRole: 'branch', listenClientUrls: ['http://127.0.0.1:23792'], listenMetricsUrls: ['http://127.0.0.1:23812'] });
    for (const n of nodes) {
      expect(n.config).toMatchObject({ revisionStore: 'redis://127.0.0.1:6379/0', revisionPrefix: 'etcd-tree-example:' });
      expect(n.config.dataDir).toBe(resolve(examples, '../data/tree', n.name));
    }
  });

  it('routes events to branch A (PostgreSQL) and shards pods by namespace in branch B', () => {
    const routes = (name: string) => byName.get(name)!.topology.routes.map((r) => [r.prefix, r.to, r.shardSegment]);
    expect(routes('root')).toEqual(expect.arrayContaining([['', ['branch-b'], null], ['/registry/events/', ['branch-a'], null]]));
    expect(routes('branch-a')).toEqual([['', ['events'], null]]);
    expect(routes('branch-b')).toEqual(expect.arrayContaining([['', ['local'], null], ['/registry/pods/', ['pods-mariadb', 'pods-postgres'], 0]]));
    expect(byName.get('branch-a')!.topology.backends.get('events')).toMatchObject({ kind: 'postgres', displayUrl: 'postgres://postgres@127.0.0.1:5432/etcd_tree_events' });
    expect(byName.get('branch-b')!.topology.backends.get('pods-mariadb')).toMatchObject({ kind: 'mysql', displayUrl: 'mysql://root@127.0.0.1:3306/etcd_tree_pods' });
  });

  it('starts the branches first and the root last', () => {
    expect(startOrder(nodes).map((n) => n.name)).toEqual(['branch-a', 'branch-b', 'root']);
  });

  it('prints the root first and etcdctl commands down every route', () => {
    expect(describeTree(nodes).split('\n')[0]).toMatch(/^root \(root, .*node\.yaml\): clients http:\/\/127\.0\.0\.1:2379, metrics http:\/\/127\.0\.0\.1:2381$/);
    const text = howToUse(nodes, 'data/tree/logs');
    expect(text).toContain('Its root: http://127.0.0.1:2379');
    expect(text).toContain('etcdctl --endpoints=http://127.0.0.1:2379 put /registry/events/default/example hello');
    expect(text).toContain('put /registry/pods/kube-system/example hello');
  });
});

describe('tree directories', () => {
  it('refuses one without a root, and names the file of a bad node', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tree-'));
    try {
      mkdirSync(join(dir, 'b/topology.d'), { recursive: true });
      writeFileSync(join(dir, 'b/topology.d/00.yaml'), 'backends:\n  l: { kind: sqlite, path: l.db }\nroutes:\n  - { prefix: "", to: l }\n');
      writeFileSync(join(dir, 'b/node.yaml'), 'tree-role: branch\ntopology-dir: topology.d\n');
      expect(() => readTreeNodes(dir)).toThrow(/has no node with tree-role: root/);
      writeFileSync(join(dir, 'b/node.yaml'), 'tree-role: branch\ntopology-dir: topology.d\nlisten-urls: x\n');
      expect(() => readTreeNodes(dir)).toThrow(/b\/node\.yaml:3: unknown setting "listen-urls"/);
      expect(() => readTreeNodes(join(dir, 'b/topology.d'))).toThrow(/has no node folders/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('console lines of a node', () => {
  it('shows warnings and errors briefly, hides info, passes other text through', () => {
    expect(consoleLine('{"level":"info","msg":"etcd-tree node serving"}')).toBeNull();
    expect(consoleLine('{"level":"warn","msg":"leaf unavailable","err":{"message":"ECONNREFUSED"}}')).toBe('WARN leaf unavailable: ECONNREFUSED');
    expect(consoleLine('{"level":"error","msg":"boom"}')).toBe('ERROR boom');
    expect(consoleLine('TypeError: x is not a function')).toBe('TypeError: x is not a function');
  });
});
