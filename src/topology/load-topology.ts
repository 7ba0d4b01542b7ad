// Reads a topology directory: every *.yaml in lexical order, merged. Validates as it goes;
// every error names the file, the line and the problem.
import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap, type YAMLSeq } from 'yaml';
import { TopologyError } from './topology-error.ts';

export interface SqliteBackend {
  kind: 'sqlite';
  name: string;
  /** Absolute path of the database file. */
  path: string;
  /** Table-name prefix. */
  table: string;
  definedIn: string;
}

export type Backend = SqliteBackend;

export interface RouteSpec {
  prefix: string;
  to: string;
  definedIn: string;
}

export interface Topology {
  backends: Map<string, Backend>;
  routes: RouteSpec[];
}

const KNOWN_KINDS = ['sqlite', 'postgres', 'mysql', 'node'];
const SUPPORTED_KINDS = ['sqlite'];

class FileReader {
  private readonly lines = new LineCounter();
  readonly root: Node | null;

  constructor(readonly file: string, text: string) {
    const doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false });
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      throw new TopologyError(file, e.linePos?.[0]?.line ?? 1, `invalid YAML: ${e.message.split('\n')[0]}`);
    }
    this.root = (doc.contents as Node | null) ?? null;
  }

  line(node: Node | null | undefined): number {
    const offset = node?.range?.[0];
    return offset === undefined ? 1 : this.lines.linePos(offset).line;
  }

  fail(node: Node | null | undefined, problem: string): never {
    throw new TopologyError(this.file, this.line(node), problem);
  }

  map(node: Node | null | undefined, what: string): YAMLMap<Node, Node> {
    if (!isMap(node)) this.fail(node, `${what} must be a mapping`);
    return node as YAMLMap<Node, Node>;
  }

  string(node: Node | null | undefined, what: string): string {
    if (!isScalar(node) || typeof node.value !== 'string') this.fail(node, `${what} must be a string`);
    return node.value as string;
  }

  /** Checks that a mapping holds only the allowed keys; returns key -> value node. */
  fields(map: YAMLMap<Node, Node>, allowed: string[], what: string): Map<string, Node> {
    const out = new Map<string, Node>();
    for (const pair of map.items) {
      const key = this.string(pair.key, `a key of ${what}`);
      if (!allowed.includes(key)) this.fail(pair.key, `unknown field "${key}" in ${what} (allowed: ${allowed.join(', ')})`);
      out.set(key, pair.value as Node);
    }
    return out;
  }
}

export function loadTopology(dir: string, dataDir: string): Topology {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  } catch (err) {
    throw new Error(`cannot read topology directory ${dir}: ${(err as Error).message}`);
  }
  if (files.length === 0) throw new Error(`topology directory ${dir} has no *.yaml files`);
  const topology: Topology = { backends: new Map(), routes: [] };
  const routeLines = new Map<string, string>();
  for (const name of files) {
    const file = join(dir, name);
    const r = new FileReader(file, readFileSync(file, 'utf8'));
    if (r.root === null) continue;
    const top = r.fields(r.map(r.root, 'the file'), ['backends', 'routes'], 'the file');
    const backends = top.get('backends');
    if (backends) {
      for (const pair of r.map(backends, 'backends').items) {
        const backendName = r.string(pair.key, 'a backend name');
        const prior = topology.backends.get(backendName);
        if (prior) r.fail(pair.key, `backend "${backendName}" is already defined in ${prior.definedIn}`);
        topology.backends.set(backendName, readBackend(r, backendName, pair.value as Node, dataDir));
      }
    }
    const routes = top.get('routes');
    if (routes) {
      if (!isSeq(routes)) r.fail(routes, 'routes must be a list');
      for (const item of (routes as YAMLSeq<Node>).items) {
        const f = r.fields(r.map(item, 'a route'), ['prefix', 'to'], 'a route');
        const prefixNode = f.get('prefix');
        if (prefixNode === undefined) r.fail(item, 'a route needs a prefix ("" for the catch-all)');
        const prefix = r.string(prefixNode, 'prefix');
        const toNode = f.get('to');
        if (toNode === undefined) r.fail(item, 'a route needs "to: <backend>"');
        const to = r.string(toNode, 'to');
        const where = `${file}:${r.line(item)}`;
        const prior = routeLines.get(prefix);
        if (prior) r.fail(item, `route for prefix "${prefix}" is already defined at ${prior}`);
        routeLines.set(prefix, where);
        topology.routes.push({ prefix, to, definedIn: where });
      }
    }
  }
  for (const route of topology.routes) {
    if (!topology.backends.has(route.to)) throw new Error(`${route.definedIn}: route "${route.prefix}" goes to unknown backend "${route.to}"`);
  }
  if (!topology.routes.some((r) => r.prefix === '')) throw new Error(`topology in ${dir} has no catch-all route (prefix: "")`);
  return topology;
}

function readBackend(r: FileReader, name: string, node: Node, dataDir: string): Backend {
  const map = r.map(node, `backend "${name}"`);
  const f = r.fields(map, ['kind', 'path', 'url', 'pool', 'table', 'endpoints', 'tls'], `backend "${name}"`);
  const kindNode = f.get('kind');
  if (kindNode === undefined) r.fail(node, `backend "${name}" needs a kind (${KNOWN_KINDS.join(' | ')})`);
  const kind = r.string(kindNode, 'kind');
  if (!KNOWN_KINDS.includes(kind)) r.fail(kindNode, `unknown backend kind "${kind}" (${KNOWN_KINDS.join(' | ')})`);
  if (!SUPPORTED_KINDS.includes(kind)) r.fail(kindNode, `backend kind "${kind}" is not implemented yet in this version (supported: ${SUPPORTED_KINDS.join(', ')})`);
  const pathNode = f.get('path');
  if (pathNode === undefined) r.fail(node, `sqlite backend "${name}" needs a path`);
  const path = r.string(pathNode, 'path');
  const table = f.get('table') ? r.string(f.get('table'), 'table') : '';
  if (!/^[A-Za-z0-9_]*$/.test(table)) r.fail(f.get('table'), 'table prefix may hold only letters, digits and _');
  return { kind: 'sqlite', name, path: isAbsolute(path) ? path : resolve(dataDir, path), table, definedIn: r.file };
}
