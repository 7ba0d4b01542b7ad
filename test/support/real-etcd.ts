// Starts a real etcd 3.5 (the reference for conformance) on loopback ports with a temp data dir.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PortTakenError, spawnListening, type ListeningChild } from './listening-child.ts';
import { freePort } from './ports.ts';

export interface RealEtcd {
  endpoint: string; // host:port
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

let cachedBinary: string | undefined;
export function etcd35Binary(): string {
  if (process.env.ETCD35_BIN) return process.env.ETCD35_BIN;
  if (!cachedBinary) {
    const tool = resolve(import.meta.dirname, '../../../shared/tools/etcd35');
    cachedBinary = execFileSync('bash', [tool], { encoding: 'utf8' }).trim();
  }
  return cachedBinary;
}

export async function startRealEtcd(opts: { progressNotifyInterval?: string; extraArgs?: string[] } = {}): Promise<RealEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'real-etcd-'));
  // Ports we pick were free a moment ago; another test's process may take one first.
  let started: ListeningChild;
  let port: number;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const peerPort = await freePort();
    const args = [
      '--name', 'reference',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', `http://127.0.0.1:${port}`,
      '--advertise-client-urls', `http://127.0.0.1:${port}`,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `reference=http://127.0.0.1:${peerPort}`,
      '--experimental-watch-progress-notify-interval', opts.progressNotifyInterval ?? '1s',
      '--log-level', 'error',
      ...(opts.extraArgs ?? []),
    ];
    try {
      started = await spawnListening('real etcd', etcd35Binary(), args, {}, port, 20_000);
      break;
    } catch (err) {
      if (!(err instanceof PortTakenError && attempt < 3)) throw err;
      // What the failed attempt wrote must not be read as this member's data.
      rmSync(join(dir, 'data'), { recursive: true, force: true });
    }
  }
  const { child, exited } = started;
  return {
    endpoint: `127.0.0.1:${port}`,
    port,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
