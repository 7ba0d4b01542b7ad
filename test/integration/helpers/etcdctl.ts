// Runs the real etcdctl binary (3.4, API v3) against a node.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export const ETCDCTL = process.env.ETCDCTL_BIN ?? '/usr/bin/etcdctl';

export interface CtlResult { code: number | null; stdout: string; stderr: string }

export interface CtlOptions {
  /** Written to stdin, which is then closed. */
  input?: string;
  /** TLS flags etc., placed before the command. */
  globalArgs?: string[];
  timeoutMs?: number;
}

function baseArgs(endpoint: string, globalArgs: string[] = []): string[] {
  return [`--endpoints=${endpoint}`, '--dial-timeout=3s', '--command-timeout=10s', ...globalArgs];
}

/** Runs `etcdctl --endpoints=<endpoint> ...args` to completion. */
export function etcdctl(endpoint: string, args: string[], opts: CtlOptions = {}): Promise<CtlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(ETCDCTL, [...baseArgs(endpoint, opts.globalArgs), ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d.toString(); });
    child.stderr.on('data', (d) => { stderr += d.toString(); });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`etcdctl ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like etcdctl() but throws unless the exit code is 0; returns stdout. */
export async function ctlOk(endpoint: string, args: string[], opts: CtlOptions = {}): Promise<string> {
  const r = await etcdctl(endpoint, args, opts);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** A long-running etcdctl (e.g. `watch`), with its stdout accumulated. */
export interface CtlProcess {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout satisfies `pred`; rejects on timeout or if the process exits first. */
  waitForStdout(pred: (out: string) => boolean, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export function spawnCtl(endpoint: string, args: string[], globalArgs: string[] = []): CtlProcess {
  const child = spawn(ETCDCTL, [...baseArgs(endpoint, globalArgs), ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout.on('data', (d) => { out += d.toString(); for (const l of listeners) l(); });
  child.stderr.on('data', (d) => { err += d.toString(); });
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForStdout(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          let ok = false;
          try { ok = pred(out); } catch { /* e.g. a partial line: not yet */ }
          if (ok) { cleanup(); resolve(out); }
        };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`etcdctl ${args.join(' ')}: expected output not seen in ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`)); }, timeoutMs);
        const onExit = () => { check(); cleanup(); reject(new Error(`etcdctl ${args.join(' ')} exited ${child.exitCode}\nstdout: ${out}\nstderr: ${err}`)); };
        const cleanup = () => { clearTimeout(timer); listeners.delete(check); child.off('close', onExit); };
        listeners.add(check);
        child.once('close', onExit);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
