// One Kubernetes API server binary as a child process: its stderr (klog) kept whole, in memory
// and in a file, readiness awaited on /readyz, stopped with SIGTERM (SIGKILL after a grace).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { request } from 'node:https';
import { waitForPort } from '../../../support/ports.ts';

export interface ServerProcess {
  readonly name: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Every complete stderr+stdout line so far (klog lines). */
  lines(): string[];
  /** The last `n` lines, for failure messages. */
  tail(n?: number): string;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  binary: string;
  args: string[];
  port: number;
  /** Where the whole log is also written. */
  logFile: string;
}

export function spawnServer(opts: SpawnOptions): ServerProcess {
  const child = spawn(opts.binary, opts.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const file = createWriteStream(opts.logFile);
  const all: string[] = [];
  let partial = '';
  const onData = (d: Buffer) => {
    file.write(d);
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    all.push(...parts);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  killWithWorker(child);
  const exited = new Promise<void>((r) => child.once('exit', () => { file.end(); r(); }));

  const server: ServerProcess = {
    name: opts.name,
    port: opts.port,
    process: child,
    lines: () => all.slice(),
    tail: (n = 40) => all.slice(-n).join('\n'),
    async stop(graceMs = 10_000) {
      if (gone()) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => { if (!gone()) child.kill('SIGKILL'); }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return server;
}

/** SIGKILLs `child` when the test worker exits, so no server outlives it even if afterAll never runs. */
export function killWithWorker(child: ChildProcess): void {
  const kill = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
}

/** GET https://127.0.0.1:port<path> with a bearer token; the serving certificate is not verified here. */
export function httpsGet(port: number, path: string, token: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Waits until GET /readyz answers 200 "ok"; fails early if the process exits. */
export async function waitReady(server: ServerProcess, token: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitedEarly = false;
  server.process.once('exit', () => { exitedEarly = true; });
  await waitForPort(server.port, timeoutMs).catch((err) => {
    throw new Error(`${server.name} did not listen: ${String(err)}\n${server.tail()}`);
  });
  let last = '';
  for (;;) {
    if (exitedEarly || server.process.exitCode !== null) throw new Error(`${server.name} exited (${server.process.exitCode})\n${server.tail()}`);
    try {
      const r = await httpsGet(server.port, '/readyz', token);
      if (r.status === 200) return;
      last = `${r.status} ${r.body}`;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw new Error(`${server.name} not ready after ${timeoutMs} ms; last /readyz: ${last}\n${server.tail()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
