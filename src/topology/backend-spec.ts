// Backend definitions in topology files: a leaf database (sqlite, postgres, mysql) or a child
// node (another etcd-tree node, or anything speaking etcd v3). Validated field by field;
// errors name file and line.
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Node } from 'yaml';
import { expandEnvRefs } from './env-refs.ts';
import type { YamlReader } from './yaml-reader.ts';

interface BackendCommon {
  name: string;
  /** file:line of the definition. */
  definedAt: string;
  /** Table-name prefix ("" = none), so several leaves can share one database. */
  table: string;
}

export interface SqliteBackend extends BackendCommon {
  kind: 'sqlite';
  /** Absolute path of the database file. */
  path: string;
}

export interface SqlServerBackend extends BackendCommon {
  kind: 'postgres' | 'mysql';
  /** Connection URL with ${ENV} references expanded: never log it (use displayUrl). */
  url: string;
  displayUrl: string;
  poolMax: number;
  statementTimeoutMs: number;
}

/** Client TLS towards a child: file paths, absolute (relative ones resolve against the topology file's directory). */
export interface ChildTls {
  ca: string | null;
  cert: string | null;
  key: string | null;
}

export interface NodeBackend {
  kind: 'node';
  name: string;
  definedAt: string;
  /** Replicas of the child, http:// or https:// (one connection pool each; calls go round-robin). */
  endpoints: string[];
  tls: ChildTls | null;
}

export type LeafBackend = SqliteBackend | SqlServerBackend;
export type Backend = LeafBackend | NodeBackend;
export type BackendKind = Backend['kind'];

const KINDS = ['sqlite', 'postgres', 'mysql', 'node'] as const;
const FIELDS: Record<(typeof KINDS)[number], readonly string[]> = {
  sqlite: ['kind', 'path', 'table'],
  postgres: ['kind', 'url', 'pool', 'table', 'statementTimeoutMs'],
  mysql: ['kind', 'url', 'pool', 'table', 'statementTimeoutMs'],
  node: ['kind', 'endpoints', 'tls'],
};
const URL_SCHEMES: Record<'postgres' | 'mysql', string[]> = { postgres: ['postgres:', 'postgresql:'], mysql: ['mysql:', 'mariadb:'] };

export function readBackend(r: YamlReader, name: string, node: Node, dataDir: string, env: NodeJS.ProcessEnv): Backend {
  const what = `backend "${name}"`;
  const map = r.map(node, what);
  const kindNode = map.items.find((p) => r.string(p.key, `a key of ${what}`) === 'kind')?.value as Node | undefined;
  if (kindNode === undefined) r.fail(node, `${what} needs a kind (${KINDS.join(' | ')})`);
  const kind = r.string(kindNode, 'kind');
  if (!(KINDS as readonly string[]).includes(kind)) r.fail(kindNode, `unknown backend kind "${kind}" (${KINDS.join(' | ')})`);
  const f = r.fields(map, FIELDS[kind as (typeof KINDS)[number]], `${what} (kind ${kind})`);
  if (kind === 'node') return readNodeBackend(r, name, node, f);

  const tableNode = f.get('table');
  const table = tableNode ? r.string(tableNode, 'table') : '';
  if (!/^[A-Za-z0-9_]*$/.test(table)) r.fail(tableNode, 'table prefix may hold only letters, digits and _');
  const common = { name, definedAt: r.where(node), table };

  if (kind === 'sqlite') {
    const pathNode = f.get('path');
    if (pathNode === undefined) r.fail(node, `sqlite ${what} needs a path`);
    const path = r.string(pathNode, 'path');
    return { kind, ...common, path: isAbsolute(path) ? path : resolve(dataDir, path) };
  }

  const urlNode = f.get('url');
  if (urlNode === undefined) r.fail(node, `${kind} ${what} needs a url`);
  const displayUrl = r.string(urlNode, 'url');
  const url = expandEnvRefs(displayUrl, env, (v) => r.fail(urlNode, `url refers to environment variable ${v}, which is not set`));
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    r.fail(urlNode, `url is not a valid URL (expected ${URL_SCHEMES[kind as 'postgres' | 'mysql'][0]}//user@host:port/database)`);
  }
  if (!URL_SCHEMES[kind as 'postgres' | 'mysql'].includes(parsed.protocol)) {
    r.fail(urlNode, `a ${kind} url must start with ${URL_SCHEMES[kind as 'postgres' | 'mysql'].join(' or ')}//`);
  }
  if (parsed.pathname.length <= 1) r.fail(urlNode, 'url must name the database (…/DATABASE)');
  let poolMax = 10;
  const poolNode = f.get('pool');
  if (poolNode) {
    const pool = r.fields(r.map(poolNode, 'pool'), ['max'], 'pool');
    if (pool.has('max')) poolMax = r.integer(pool.get('max'), 'pool.max', 1);
  }
  const timeoutNode = f.get('statementTimeoutMs');
  const statementTimeoutMs = timeoutNode ? r.integer(timeoutNode, 'statementTimeoutMs', 1) : 10_000;
  return { kind: kind as 'postgres' | 'mysql', ...common, url, displayUrl, poolMax, statementTimeoutMs };
}

function readNodeBackend(r: YamlReader, name: string, node: Node, f: Map<string, Node>): NodeBackend {
  const what = `node backend "${name}"`;
  const endpointsNode = f.get('endpoints');
  if (endpointsNode === undefined) r.fail(node, `${what} needs endpoints: [http://host:port, ...]`);
  const endpoints = r.seq(endpointsNode, 'endpoints').map((e) => {
    const url = r.string(e, 'an endpoint');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      r.fail(e, `endpoint "${url}" is not a URL (expected http://host:port or https://host:port)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') r.fail(e, `endpoint "${url}" must start with http:// or https://`);
    if (!parsed.port) r.fail(e, `endpoint "${url}" needs a port`);
    return url;
  });
  if (endpoints.length === 0) r.fail(endpointsNode, 'endpoints needs at least one URL');
  const secure = endpoints.filter((u) => u.startsWith('https:')).length;
  if (secure !== 0 && secure !== endpoints.length) r.fail(endpointsNode, 'endpoints must be all http:// or all https://');
  let tls: ChildTls | null = null;
  const tlsNode = f.get('tls');
  if (tlsNode) {
    const t = r.fields(r.map(tlsNode, 'tls'), ['ca', 'cert', 'key'], 'tls');
    const dir = dirname(r.file);
    const path = (k: string) => {
      const v = t.get(k);
      if (v === undefined) return null;
      const p = r.string(v, `tls.${k}`);
      return isAbsolute(p) ? p : resolve(dir, p);
    };
    tls = { ca: path('ca'), cert: path('cert'), key: path('key') };
    if ((tls.cert === null) !== (tls.key === null)) r.fail(tlsNode, 'tls needs both cert and key (or neither)');
    if (secure === 0) r.fail(tlsNode, 'tls settings need https:// endpoints');
  }
  return { kind: 'node', name, definedAt: r.where(node), endpoints, tls };
}
