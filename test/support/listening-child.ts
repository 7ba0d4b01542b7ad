// Starts a server process and waits until it listens on its port itself. A port freePort()
// picked can be taken by another test's process before the server binds it: the server then
// exits (address in use), while a connection to the port would be answered by the other process
// and a test would talk to the wrong server.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ListeningChild {
  child: ChildProcess;
  /** Last few KiB of its stdout and stderr, for failure messages. */
  output(): string;
  /** Resolves with the exit code when it exits. */
  exited: Promise<number | null>;
}

/** The server exited because its port was taken: a caller that picked the port may pick again. */
export class PortTakenError extends Error {}

/**
 * Whether process `pid` holds the socket listening on 127.0.0.1:port (Linux /proc: the listening
 * socket's inode among the process's descriptors). Undefined where /proc cannot tell.
 */
function listensOn(pid: number, port: number): boolean | undefined {
  let table: string;
  let fds: string[];
  try {
    table = readFileSync('/proc/net/tcp', 'utf8');
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const LISTEN = '0A';
  const inodes = new Set(
    table.split('\n').slice(1).map((line) => line.trim().split(/\s+/)).filter((f) => f[1] === local && f[3] === LISTEN).map((f) => f[9]),
  );
  if (inodes.size === 0) return false;
  return fds.some((fd) => {
    try {
      return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
    } catch {
      return false; // closed meanwhile
    }
  });
}

/** Resolves once `pid` listens on 127.0.0.1:port (or, where /proc cannot tell, once anything accepts there). */
async function waitUntilListening(pid: number, port: number, timeoutMs: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mine = listensOn(pid, port);
    const ok =
      mine ??
      (await new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      }));
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing of pid ${pid} listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Spawns `command` and waits until it listens on 127.0.0.1:port. Rejects with the server's
 * output if it exits first (PortTakenError when it says its address was in use) or does not
 * listen within timeoutMs.
 */
export async function spawnListening(what: string, command: string, args: string[], options: SpawnOptions, port: number, timeoutMs = 30_000): Promise<ListeningChild> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => { out = (out + d.toString()).slice(-8000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    await Promise.race([
      waitUntilListening(child.pid!, port, timeoutMs),
      exited.then((code) => {
        const message = `${what} exited with ${code} before listening`;
        throw /EADDRINUSE|address already in use/.test(out) ? new PortTakenError(message) : new Error(message);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    (err as Error).message += `\n${out}`;
    throw err;
  }
  return { child, output: () => out, exited };
}
