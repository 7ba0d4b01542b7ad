// Reads a topology directory: every *.yaml in lexical order, merged. A backend or a route
// prefix defined twice (across files) is an error naming both places. Every error names the
// file, the line and the problem.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBackend, type Backend } from './backend-spec.ts';
import { YamlReader } from './yaml-reader.ts';

export type { Backend } from './backend-spec.ts';

export interface RouteSpec {
  prefix: string;
  /** One backend, or several when the prefix is sharded. */
  to: string[];
  /** For shard sets: which key segment after the prefix is hashed (0 = the first). */
  shardSegment: number | null;
  definedAt: string;
}

export interface Topology {
  backends: Map<string, Backend>;
  routes: RouteSpec[];
}

export function loadTopology(dir: string, dataDir: string, env: NodeJS.ProcessEnv = process.env): Topology {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  } catch (err) {
    throw new Error(`cannot read topology directory ${dir}: ${(err as Error).message}`);
  }
  if (files.length === 0) throw new Error(`topology directory ${dir} has no *.yaml files`);
  const topology: Topology = { backends: new Map(), routes: [] };
  const routeAt = new Map<string, string>();
  const routeTargets: Array<{ route: RouteSpec; reader: YamlReader; nodes: unknown[] }> = [];
  for (const name of files) {
    const file = join(dir, name);
    const r = new YamlReader(file, readFileSync(file, 'utf8'));
    if (r.root === null) continue;
    const top = r.fields(r.map(r.root, 'a topology file'), ['backends', 'routes'], 'a topology file');
    const backends = top.get('backends');
    if (backends) {
      for (const pair of r.map(backends, 'backends').items) {
        const backendName = r.string(pair.key, 'a backend name');
        const prior = topology.backends.get(backendName);
        if (prior) r.fail(pair.key, `backend "${backendName}" is already defined at ${prior.definedAt}`);
        topology.backends.set(backendName, readBackend(r, backendName, pair.value as never, dataDir, env));
      }
    }
    const routes = top.get('routes');
    if (routes) {
      for (const item of r.seq(routes, 'routes')) {
        const f = r.fields(r.map(item, 'a route'), ['prefix', 'to', 'shards', 'shardSegment'], 'a route');
        if (!f.has('prefix')) r.fail(item, 'a route needs a prefix ("" for the catch-all)');
        const prefix = r.string(f.get('prefix'), 'prefix');
        const prior = routeAt.get(prefix);
        if (prior) r.fail(item, `a route for prefix "${prefix}" is already defined at ${prior}`);
        routeAt.set(prefix, r.where(item));
        let to: string[];
        let shardSegment: number | null = null;
        let nodes: unknown[];
        if (f.has('to') === f.has('shards')) r.fail(item, 'a route needs exactly one of "to: <backend>" or "shards: [<backend>, ...]"');
        if (f.has('to')) {
          to = [r.string(f.get('to'), 'to')];
          nodes = [f.get('to')];
          if (f.has('shardSegment')) r.fail(f.get('shardSegment'), 'shardSegment only applies to routes with shards');
        } else {
          nodes = r.seq(f.get('shards'), 'shards');
          to = nodes.map((n) => r.string(n as never, 'a shard backend'));
          if (to.length < 2) r.fail(f.get('shards'), 'shards needs at least two backends');
          if (new Set(to).size !== to.length) r.fail(f.get('shards'), 'shards lists a backend twice');
          shardSegment = f.has('shardSegment') ? r.integer(f.get('shardSegment'), 'shardSegment', 0) : 0;
        }
        const route: RouteSpec = { prefix, to, shardSegment, definedAt: r.where(item) };
        topology.routes.push(route);
        routeTargets.push({ route, reader: r, nodes });
      }
    }
  }
  // Targets are checked after every file is read: a route may name a backend of a later file.
  for (const { route, reader, nodes } of routeTargets) {
    route.to.forEach((target, i) => {
      if (!topology.backends.has(target)) reader.fail(nodes[i] as never, `route "${route.prefix}" goes to unknown backend "${target}"`);
    });
  }
  if (!topology.routes.some((r) => r.prefix === '')) throw new Error(`the topology in ${dir} has no catch-all route (prefix: "")`);
  return topology;
}

/** The resolved route table as text, for `etcd-tree topology check`. */
export function describeTopology(t: Topology): string {
  const lines = ['backends:'];
  for (const b of t.backends.values()) {
    if (b.kind === 'node') {
      lines.push(`  ${b.name.padEnd(16)} ${'node'.padEnd(8)} ${b.endpoints.join(', ')}${b.tls?.cert ? ' (mutual TLS)' : ''}`);
      continue;
    }
    const where = b.kind === 'sqlite' ? b.path : b.displayUrl;
    lines.push(`  ${b.name.padEnd(16)} ${b.kind.padEnd(8)} ${where}${b.table ? ` (tables ${b.table}_*)` : ''}`);
  }
  lines.push('routes (longest prefix wins):');
  for (const r of [...t.routes].sort((a, b) => b.prefix.length - a.prefix.length || a.prefix.localeCompare(b.prefix))) {
    const target = r.to.length === 1 ? r.to[0] : `shards [${r.to.join(', ')}] by key segment ${r.shardSegment}`;
    lines.push(`  ${JSON.stringify(r.prefix).padEnd(32)} -> ${target}    (${r.definedAt})`);
  }
  return lines.join('\n');
}
