// One node of a tree as a child process of the runner: the real `etcd-tree --config-file`, its
// log in a file, its warnings and errors echoed with its name, ready when /readyz says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { TreeNode } from './tree-nodes.ts';

const CLI = resolve(import.meta.dirname, '../cli.ts');
/** Lines kept in memory, to show why a node failed without sending the user to its log file. */
const TAIL_LINES = 20;
const STOP_GRACE_MS = 15_000;
const ECHOED_LEVELS = new Set(['warn', 'error', 'fatal']);

export interface NodeProcessOptions {
  logDir: string;
  /** Where warnings, errors and stderr lines of the node go (already prefixed with its name). */
  echo: (line: string) => void;
}

export class NodeProcess {
  readonly logFile: string;
  /** Resolves when the process ends: its exit code, or the signal that ended it. */
  readonly exited: Promise<string>;
  private readonly child: ChildProcess;
  private readonly log: WriteStream;
  private readonly tailLines: string[] = [];
  private ended = false;

  private constructor(readonly node: TreeNode, opts: NodeProcessOptions) {
    mkdirSync(opts.logDir, { recursive: true });
    this.logFile = join(opts.logDir, `${node.name}.log`);
    this.log = createWriteStream(this.logFile, { flags: 'w' });
    this.child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, '--config-file', node.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: Ctrl-C reaches only the runner, which stops the nodes root first.
      detached: true,
    });
    this.exited = new Promise((done) => {
      // 'close' rather than 'exit': the node's last lines are in the log by then.
      this.child.once('close', (code, signal) => {
        this.ended = true;
        if (!this.log.writableEnded) this.log.end();
        done(code === null ? String(signal) : `code ${code}`);
      });
      this.child.once('error', (err) => {
        this.ended = true;
        this.keep(`cannot start: ${err.message}`);
        if (!this.log.writableEnded) this.log.end();
        done(`error ${err.message}`);
      });
    });
    const prefix = `[${node.name}] `;
    this.forward(this.child.stdout!, (line) => {
      const shown = consoleLine(line);
      if (shown !== null) opts.echo(prefix + shown);
    });
    this.forward(this.child.stderr!, (line) => opts.echo(prefix + line));
  }

  /** Spawns the node after checking that nothing else answers on its ports. */
  static async start(node: TreeNode, opts: NodeProcessOptions): Promise<NodeProcess> {
    for (const url of [...node.config.listenClientUrls, ...node.config.listenMetricsUrls]) {
      // Otherwise /readyz could be answered by a node left over from an earlier run.
      if (await answers(url)) throw new Error(`${node.name}: ${url} is already in use (is a tree, or npm start, already running?)`);
    }
    return new NodeProcess(node, opts);
  }

  get running(): boolean {
    return !this.ended;
  }

  /** Waits for 200 on the first metrics URL's /readyz; fails if the node exits first. */
  async waitReady(timeoutMs: number): Promise<void> {
    const url = `${dialable(this.node.config.listenMetricsUrls[0])}/readyz`;
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (!this.ended) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
        last = `${res.status} ${(await res.text()).trim()}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`${this.node.name} not ready after ${timeoutMs / 1000}s (${url}: ${last})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${this.node.name} exited (${await this.exited}) before it was ready`);
  }

  /** SIGTERM (the node finishes in-flight requests), SIGKILL if it takes too long. */
  async stop(): Promise<string> {
    if (!this.ended) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited.finally(() => clearTimeout(timer));
    }
    return this.exited;
  }

  /** For the runner's own exit: nothing may outlive it. Synchronous. */
  killNow(): void {
    if (!this.ended) this.child.kill('SIGKILL');
  }

  /** The last lines the node wrote, for failure messages. */
  tail(): string {
    return this.tailLines.join('\n');
  }

  private forward(stream: Readable, echo: (line: string) => void): void {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.log.write(chunk);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.length === 0) continue;
        this.keep(line);
        echo(line);
      }
    });
  }

  private keep(line: string): void {
    this.tailLines.push(line);
    if (this.tailLines.length > TAIL_LINES) this.tailLines.shift();
  }
}

/**
 * A pino line as the console shows it ("WARN message: error"), or null for levels below warn,
 * which stay in the log file. Lines that are not pino JSON (a crash) are shown as they are.
 */
export function consoleLine(line: string): string | null {
  let entry: { level?: unknown; msg?: unknown; err?: { message?: unknown } };
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    return line;
  }
  if (typeof entry.level !== 'string' || typeof entry.msg !== 'string') return line;
  if (!ECHOED_LEVELS.has(entry.level)) return null;
  const cause = typeof entry.err?.message === 'string' && entry.err.message ? `: ${entry.err.message}` : '';
  return `${entry.level.toUpperCase()} ${entry.msg}${cause}`;
}

/** A listen URL as something to connect to: the wildcard addresses mean this machine. */
function dialable(url: string): string {
  const u = new URL(url);
  if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
  if (u.hostname === '[::]') u.hostname = '[::1]';
  return u.origin;
}

function answers(url: string): Promise<boolean> {
  const u = new URL(dialable(url));
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  return new Promise((done) => {
    const socket = connect({ host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port });
    socket.setTimeout(1000);
    socket.once('connect', () => (socket.destroy(), done(true)));
    socket.once('timeout', () => (socket.destroy(), done(false)));
    socket.once('error', () => done(false));
  });
}
