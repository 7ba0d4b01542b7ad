// A Kubernetes control plane on one etcd target: the real kube-apiserver v1.20.2 as the core,
// and the apiextensions-apiserver built from Kubernetes 1.36 libraries (CRDs, custom resources,
// WatchList, consistent lists from the watch cache) using it for authn/authz and namespaces.
// Both store in the same etcd endpoint(s); the 1.36 server keeps its default --etcd-prefix
// (/registry/apiextensions.kubernetes.io) so the 1.20 server's own CRD controllers never see
// its CRDs.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../../support/ports.ts';
import type { EtcdTarget, EtcdUnderTest } from './etcd-targets.ts';
import { KubeClient } from './kube-client.ts';
import { spawnServer, waitReady, type ServerProcess } from './server-process.ts';

const tools = resolve(import.meta.dirname, '../../../../../shared/tools');

function tool(name: string, envOverride: string): string {
  return process.env[envOverride] ?? execFileSync('bash', [join(tools, name)], { encoding: 'utf8' }).trim();
}

export interface ClusterOptions {
  /** --etcd-compaction-interval of both servers. */
  compactionInterval: string;
  /** kube-apiserver --event-ttl. */
  eventTtl: string;
  /** kube-apiserver --service-cluster-ip-range. */
  serviceCidr: string;
}

export const defaultClusterOptions: ClusterOptions = {
  compactionInterval: '20s',
  eventTtl: '1s',
  serviceCidr: '10.96.0.0/24',
};

export interface KubeCluster {
  etcd: EtcdUnderTest;
  options: ClusterOptions;
  /** kube-apiserver v1.20.2. */
  kas: ServerProcess;
  /** apiextensions-apiserver (Kubernetes 1.36). */
  aes: ServerProcess;
  core: KubeClient;
  ext: KubeClient;
  /** Flags each server was started with (for reports). */
  flags: { kas: string[]; aes: string[] };
  /** Temp dir with certs, tokens, kubeconfig and both servers' logs. */
  dir: string;
  stop(): Promise<void>;
}

const ADMIN_TOKEN = 'e2e-admin-token';


/**
 * Starts the etcd target, then kube-apiserver, then apiextensions-apiserver, and waits for
 * both /readyz. Anything started is stopped again if a later step fails.
 */
export async function startKubeCluster(target: EtcdTarget, options: ClusterOptions = defaultClusterOptions): Promise<KubeCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-e2e-'));
  // K8S_E2E_KEEP=1 keeps the temp dir (both servers' logs) for a look after the run.
  const cleanups: (() => Promise<void> | void)[] = [() => { if (!process.env.K8S_E2E_KEEP) rmSync(dir, { recursive: true, force: true }); }];
  const stopAll = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try { await fn(); } catch { /* keep cleaning */ }
    }
  };
  try {
    const kasBin = tool('kube-apiserver', 'KUBE_APISERVER_BIN');
    const aesBin = tool('apiextensions-apiserver', 'APIEXTENSIONS_APISERVER_BIN');

    // Static token: one admin in system:masters (authorization is AlwaysAllow anyway).
    writeFileSync(join(dir, 'tokens.csv'), `${ADMIN_TOKEN},e2e-admin,e2e-admin-uid,"system:masters"\n`);
    // Service-account signing key (1.20 requires --service-account-signing-key-file and -issuer).
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs1', format: 'pem' }));
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));

    const etcd = await target.start();
    cleanups.push(() => etcd.stop());
    const etcdServers = etcd.endpoints.map((e) => `${etcd.tls ? 'https' : 'http'}://${e}`).join(',');
    // --etcd-prefix stays each server's default: /registry and /registry/apiextensions.kubernetes.io.
    const etcdFlags = [
      `--etcd-servers=${etcdServers}`,
      ...(etcd.tls ? [`--etcd-cafile=${etcd.tls.ca}`, `--etcd-certfile=${etcd.tls.cert}`, `--etcd-keyfile=${etcd.tls.key}`] : []),
      `--etcd-compaction-interval=${options.compactionInterval}`,
      // Object counts (count_only Ranges) and database size (Status) every 5 s instead of 1 m / 30 s.
      '--etcd-count-metric-poll-period=5s',
      '--etcd-db-metric-poll-interval=5s',
    ];

    const kasPort = await freePort();
    const kasCerts = join(dir, 'kas-certs');
    mkdirSync(kasCerts);
    const kasFlags = [
      ...etcdFlags,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${kasPort}`,
      '--insecure-port=0',
      `--cert-dir=${kasCerts}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=AlwaysAllow',
      '--endpoint-reconciler-type=none',
      `--service-cluster-ip-range=${options.serviceCidr}`,
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--event-ttl=${options.eventTtl}`,
      // ConfigMaps bypass the watch cache, so their watches are etcd watches from RV+1.
      '--watch-cache-sizes=configmaps#0',
      '--profiling=false',
      // compact.go logs "etcd: compacted rev (N), endpoints (...)" at V(4).
      '--vmodule=compact=4',
    ];
    const kas = spawnServer({ name: 'kube-apiserver', binary: kasBin, args: kasFlags, port: kasPort, logFile: join(dir, 'kube-apiserver.log') });
    cleanups.push(() => kas.stop());
    await waitReady(kas, ADMIN_TOKEN, 90_000);

    const kasCa = readFileSync(join(kasCerts, 'apiserver.crt'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: core',
      '  cluster:',
      `    server: https://127.0.0.1:${kasPort}`,
      `    certificate-authority: ${join(kasCerts, 'apiserver.crt')}`,
      'users:',
      '- name: admin',
      '  user:',
      `    token: ${ADMIN_TOKEN}`,
      'contexts:',
      '- name: core',
      '  context: {cluster: core, user: admin}',
      'current-context: core',
      '',
    ].join('\n'));

    const aesPort = await freePort();
    const aesCerts = join(dir, 'aes-certs');
    mkdirSync(aesCerts);
    const aesFlags = [
      ...etcdFlags,
      '--bind-address=127.0.0.1',
      `--secure-port=${aesPort}`,
      `--cert-dir=${aesCerts}`,
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--authentication-skip-lookup',
      '--enable-priority-and-fairness=false',
      '--disable-admission-plugins=ValidatingAdmissionPolicy,MutatingAdmissionPolicy',
      '--profiling=false',
      '--vmodule=compact=4',
    ];
    const aes = spawnServer({ name: 'apiextensions-apiserver', binary: aesBin, args: aesFlags, port: aesPort, logFile: join(dir, 'apiextensions-apiserver.log') });
    cleanups.push(() => aes.stop());
    await waitReady(aes, ADMIN_TOKEN, 90_000);

    const core = new KubeClient('kube-apiserver', kasPort, ADMIN_TOKEN, kasCa);
    cleanups.push(() => core.close());
    const ext = new KubeClient('apiextensions-apiserver', aesPort, ADMIN_TOKEN, readFileSync(join(aesCerts, 'apiserver.crt')));
    cleanups.push(() => ext.close());

    return { etcd, options, kas, aes, core, ext, flags: { kas: kasFlags, aes: aesFlags }, dir, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
