// Starts a real etcd 3.5 (the reference for conformance) on loopback ports with a temp data dir.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, waitForPort } from './ports.ts';

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
  const port = await freePort();
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
  const child = spawn(etcd35Binary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + d.toString()).slice(-4000); });
  try {
    await waitForPort(port);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`real etcd did not start: ${String(err)}\n${stderr}`);
  }
  return {
    endpoint: `127.0.0.1:${port}`,
    port,
    process: child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
