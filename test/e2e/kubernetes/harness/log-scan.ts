// What counts as an etcd failure in a Kubernetes API server's log (klog text format,
// "Lmmdd hh:mm:ss.uuuuuu pid file:line] msg", L = I/W/E/F).

export interface LogFinding { server: string; line: string; why: string }

/** klog severity of a line, or undefined for continuation/non-klog lines. */
export function severity(line: string): 'I' | 'W' | 'E' | 'F' | undefined {
  const m = /^([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s/.exec(line);
  return m ? (m[1] as 'I' | 'W' | 'E' | 'F') : undefined;
}

/**
 * Lines that mean the etcd endpoint failed the server, at any severity:
 *  - the compactor's error "etcd: endpoint (...) compact failed: ..." (apiserver etcd3/compact.go);
 *  - "watch chan error: ..." (etcd3/watcher.go logs every watch error except compaction);
 *  - a gRPC status or an etcd error string surfacing from the client ("rpc error: code = ...",
 *    "etcdserver: ...", "mvcc: ...");
 *  - storage errors turned into API errors ("StorageError", "Internal error occurred").
 * and, at error/fatal severity only, anything naming etcd, storage or the watch cache.
 * Not a failure: the warning an etcd watch from a compacted revision leaves (1.20 logs
 * "watch chan error: etcdserver: mvcc: required revision has been compacted" at W level, as
 * against etcd; the compaction scenario causes it on purpose and the client gets 410).
 */
const EXPECTED: RegExp[] = [
  /^W\d{4} .*\] watch chan error: etcdserver: mvcc: required revision has been compacted$/,
];
const ANY_SEVERITY: [RegExp, string][] = [
  [/compact failed/, 'compaction failed'],
  [/watch chan error/, 'etcd watch error'],
  [/rpc error: code = /, 'gRPC error from etcd'],
  [/etcdserver: |mvcc: /, 'etcd error string'],
  [/StorageError|Internal error occurred/, 'storage error'],
];
const ERROR_SEVERITY: [RegExp, string][] = [
  [/etcd|storage|cacher|watch ?cache|reflector|lease/i, 'error mentioning etcd/storage/watch cache'],
];

export function etcdFailures(server: string, lines: string[]): LogFinding[] {
  const out: LogFinding[] = [];
  for (const line of lines) {
    if (EXPECTED.some((re) => re.test(line))) continue;
    const hit = ANY_SEVERITY.find(([re]) => re.test(line));
    if (hit) { out.push({ server, line, why: hit[1] }); continue; }
    const sev = severity(line);
    if (sev === 'E' || sev === 'F') {
      const e = ERROR_SEVERITY.find(([re]) => re.test(line));
      if (e) out.push({ server, line, why: e[1] });
    }
  }
  return out;
}

/** Every error/fatal klog line (reported, not all are etcd failures). */
export function errorLines(lines: string[]): string[] {
  return lines.filter((l) => severity(l) === 'E' || severity(l) === 'F');
}
