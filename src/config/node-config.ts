// Node settings from command-line flags and an optional --config-file, named like etcd's where
// the concept is the same.
import { readConfigFile, type FileSetting } from './config-file.ts';
import { parseDuration } from './duration.ts';

/** Where this node sits in a tree: the root sees the whole keyspace, a branch only its part. */
export type TreeRole = 'root' | 'branch';

export interface NodeConfig {
  name: string;
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  listenMetricsUrls: string[];
  dataDir: string;
  topologyDir: string;
  certFile: string | null;
  keyFile: string | null;
  trustedCaFile: string | null;
  clientCertAuth: boolean;
  maxRequestBytes: number;
  maxTxnOps: number;
  progressNotifyIntervalMs: number;
  logLevel: string;
  /** 'memory' (one node) or a redis:// URL shared by every node of a tree. */
  revisionStore: string;
  /** Prefix of the Redis keys: one tree per prefix. */
  revisionPrefix: string;
  /** How long a revision may stay pending before another node fences it (Redis only). */
  revisionDeadlineMs: number;
  treeRole: TreeRole;
  /** The --config-file the settings came from, if any. */
  configFile: string | null;
}

export const defaultConfig = (): NodeConfig => ({
  name: 'default',
  listenClientUrls: ['http://127.0.0.1:2379'],
  advertiseClientUrls: [],
  listenMetricsUrls: ['http://127.0.0.1:2381'],
  dataDir: './data',
  topologyDir: './topology.d',
  certFile: null,
  keyFile: null,
  trustedCaFile: null,
  clientCertAuth: false,
  maxRequestBytes: 1.5 * 1024 * 1024,
  maxTxnOps: 128,
  progressNotifyIntervalMs: 10 * 60_000,
  logLevel: process.env.LOG_LEVEL ?? 'info',
  revisionStore: 'memory',
  revisionPrefix: 'etcd-tree:',
  revisionDeadlineMs: 5000,
  treeRole: 'root',
  configFile: null,
});

interface FlagSpec {
  help: string;
  bool?: boolean;
  /** Takes comma-separated values (a YAML sequence in a config file). */
  list?: boolean;
  apply(c: NodeConfig, value: string): void;
}

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
const positiveInt = (flag: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${flag} needs a positive integer, got "${v}"`);
  return n;
};
const bool = (flag: string, v: string) => {
  if (v === '' || v === 'true') return true;
  if (v === 'false') return false;
  throw new Error(`--${flag} takes true or false, got "${v}"`);
};

export const FLAGS: Record<string, FlagSpec> = {
  name: { help: 'human-readable name of this node (member name)', apply: (c, v) => (c.name = v) },
  'config-file': {
    help: 'YAML file of settings keyed by these flag names without -- (flags on the command line override it; relative paths in it resolve against its directory)',
    apply: (c, v) => (c.configFile = v),
  },
  'listen-client-urls': { help: 'URLs to serve the etcd v3 gRPC API on (http:// or https://)', list: true, apply: (c, v) => (c.listenClientUrls = list(v)) },
  'advertise-client-urls': { help: 'client URLs reported by MemberList (default: the listen URLs)', list: true, apply: (c, v) => (c.advertiseClientUrls = list(v)) },
  'listen-metrics-urls': { help: 'URLs for /healthz, /readyz and /metrics', list: true, apply: (c, v) => (c.listenMetricsUrls = list(v)) },
  'data-dir': { help: 'directory for embedded data (relative SQLite paths in topology resolve here)', apply: (c, v) => (c.dataDir = v) },
  'topology-dir': { help: 'directory of topology *.yaml files', apply: (c, v) => (c.topologyDir = v) },
  'cert-file': { help: 'TLS certificate for client connections', apply: (c, v) => (c.certFile = v) },
  'key-file': { help: 'TLS key for client connections', apply: (c, v) => (c.keyFile = v) },
  'trusted-ca-file': { help: 'CA that signs client certificates', apply: (c, v) => (c.trustedCaFile = v) },
  'client-cert-auth': { help: 'require client certificates signed by --trusted-ca-file', bool: true, apply: (c, v) => (c.clientCertAuth = bool('client-cert-auth', v)) },
  'max-request-bytes': { help: 'largest write request accepted (bytes)', apply: (c, v) => (c.maxRequestBytes = positiveInt('max-request-bytes', v)) },
  'max-txn-ops': { help: 'most operations in one txn branch', apply: (c, v) => (c.maxTxnOps = positiveInt('max-txn-ops', v)) },
  'experimental-watch-progress-notify-interval': {
    help: 'interval of progress notifications to watchers that asked for them',
    apply: (c, v) => (c.progressNotifyIntervalMs = parseDuration(v)),
  },
  'log-level': { help: 'debug, info, warn or error', apply: (c, v) => (c.logLevel = v) },
  'revision-store': {
    help: '"memory" (default: one node, no Redis) or redis://host:port/db, shared by every node of a tree',
    apply: (c, v) => {
      if (v !== 'memory' && !/^rediss?:\/\//.test(v)) throw new Error(`--revision-store takes "memory" or a redis:// URL, got "${v}"`);
      c.revisionStore = v;
    },
  },
  'revision-deadline': {
    help: 'how long a revision may stay pending before a node fences it (default 5s; Redis only)',
    apply: (c, v) => (c.revisionDeadlineMs = parseDuration(v)),
  },
  'revision-prefix': { help: 'prefix of the Redis keys (one tree per prefix; default etcd-tree:)', apply: (c, v) => (c.revisionPrefix = v) },
  'tree-role': {
    help: 'root: this node sees the whole keyspace (runs lease expiry, re-establishes the revision counter after Redis lost it); branch: a node below a parent',
    apply: (c, v) => {
      if (v !== 'root' && v !== 'branch') throw new Error(`--tree-role takes root or branch, got "${v}"`);
      c.treeRole = v;
    },
  },
};

/**
 * Parses `--flag value`, `--flag=value` and bare boolean flags, after the settings of
 * `--config-file` if one is given (the command line wins). Throws on unknown flags.
 */
export function parseFlags(argv: string[]): NodeConfig {
  const config = defaultConfig();
  const given = readArgv(argv);
  const files = given.filter((g) => g.name === 'config-file');
  if (files.length > 1) throw new Error('--config-file is given more than once');
  if (files.length === 1) applyFileSettings(config, readConfigFile(files[0].value, FLAGS));
  for (const { name, value } of given) FLAGS[name].apply(config, value);
  if (config.advertiseClientUrls.length === 0) config.advertiseClientUrls = config.listenClientUrls;
  const tlsWanted = config.listenClientUrls.some((u) => u.startsWith('https://'));
  if (tlsWanted && (!config.certFile || !config.keyFile)) throw new Error('https:// listen URLs need --cert-file and --key-file');
  if (config.clientCertAuth && !config.trustedCaFile) throw new Error('--client-cert-auth needs --trusted-ca-file');
  return config;
}

/** A bad value in the file is reported at its line, not as if it came from a flag. */
function applyFileSettings(config: NodeConfig, settings: FileSetting[]): void {
  for (const s of settings) {
    try {
      FLAGS[s.name].apply(config, s.value);
    } catch (err) {
      throw new Error(`${s.at}: ${(err as Error).message.replace(/^--/, '')}`);
    }
  }
}

/** The flags of argv in order, values unvalidated. */
function readArgv(argv: string[]): Array<{ name: string; value: string }> {
  const given: Array<{ name: string; value: string }> = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = FLAGS[name];
    if (!spec) throw new Error(`unknown flag --${name} (see --help)`);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (spec.bool) value = argv[i + 1] === 'true' || argv[i + 1] === 'false' ? argv[++i] : '';
    else if (i + 1 < argv.length) value = argv[++i];
    else throw new Error(`--${name} needs a value`);
    given.push({ name, value });
  }
  return given;
}

export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, spec]) => `  --${name}${spec.bool ? '' : ' VALUE'}\n      ${spec.help}`);
  return `etcd-tree: the etcd v3 API over a tree of SQL databases\n\nUsage: etcd-tree [flags]\n       etcd-tree topology check DIR [--data-dir DIR]\n       etcd-tree tree [DIR]   (start every node of DIR, default ./nodes: see README)\n\n${lines.join('\n')}\n`;
}
