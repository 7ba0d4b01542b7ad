// `etcd-tree tree [DIR]` (`npm run tree`): runs every node of a tree directory on this machine.
// Creates the leaves' databases, starts branches before roots (each ready before the next),
// prints the route tables, and on Ctrl-C/SIGTERM stops the roots first, then the branches.
import { ensureLeafDatabases } from './leaf-databases.ts';
import { NodeProcess } from './node-process.ts';
import { readTreeNodes, startOrder, type TreeNode } from './tree-nodes.ts';
import { describeTree, howToUse } from './tree-summary.ts';

export interface TreeRunOptions {
  dir: string;
  /** Each node's full log goes to <logDir>/<node>.log. */
  logDir: string;
  readyTimeoutMs: number;
}

const USAGE = 'usage: etcd-tree tree [DIR]   (DIR: one folder per node with node.yaml and topology.d/; default ./nodes)';

/** The command: parses its arguments and exits with the tree's outcome. */
export async function treeCommand(args: string[]): Promise<never> {
  if (args.length > 1 || args.some((a) => a.startsWith('-'))) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  process.exit(await runTree({ dir: args[0] ?? 'nodes', logDir: 'data/tree/logs', readyTimeoutMs: 60_000 }));
}

/** Output with one open progress line ("starting x ... ") that other lines never run into. */
class Terminal {
  private open = false;
  progress(text: string): void {
    this.line('');
    process.stdout.write(text);
    this.open = true;
  }
  finish(text: string): void {
    process.stdout.write(`${this.open ? '' : '... '}${text}\n`);
    this.open = false;
  }
  line(text: string): void {
    if (this.open) process.stdout.write('\n');
    this.open = false;
    if (text) process.stdout.write(`${text}\n`);
  }
}

/** Runs the tree until a signal or a node's death. Returns the exit code. */
export async function runTree(opts: TreeRunOptions): Promise<number> {
  const term = new Terminal();
  let nodes: TreeNode[];
  try {
    nodes = readTreeNodes(opts.dir);
    for (const db of await ensureLeafDatabases(nodes.flatMap((n) => [...n.topology.backends.values()]))) {
      term.line(`database ${db.database} on ${db.server}: ${db.outcome}`);
    }
  } catch (err) {
    process.stderr.write(`etcd-tree tree: ${(err as Error).message}\n`);
    return 2;
  }

  // Ctrl-C reaches only this process (nodes run in their own process groups); a second one
  // stops waiting for graceful shutdowns.
  const started: NodeProcess[] = [];
  let onStop: (signal: string) => void = () => {};
  const stopRequested = new Promise<string>((resolve) => (onStop = resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      for (const p of started) p.killNow();
      process.exit(130);
    }
    onStop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const killAll = () => started.forEach((p) => p.killNow());
  process.on('exit', killAll);

  try {
    for (const node of startOrder(nodes)) {
      term.progress(`starting ${node.name} (${node.config.listenClientUrls.join(', ')}) ... `);
      const t0 = Date.now();
      try {
        const p = await NodeProcess.start(node, { logDir: opts.logDir, echo: (line) => term.line(line) });
        started.push(p);
        const outcome = await Promise.race([p.waitReady(opts.readyTimeoutMs).then(() => null), stopRequested]);
        if (outcome !== null) {
          term.line(`${outcome}: stopping`);
          return await stopAll(started, term, 130);
        }
      } catch (err) {
        term.finish('failed');
        const failed = started.find((s) => s.node === node);
        term.line(`${(err as Error).message}${failed ? `\nlast lines of ${failed.logFile}:\n${failed.tail()}` : ''}`);
        return await stopAll(started, term, 1);
      }
      term.finish(`ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    }
    term.line(`\n${describeTree(nodes)}\n\n${howToUse(nodes, opts.logDir)}`);

    // A node that dies is reported and the rest keep serving (as a tree does with a lost
    // branch), so its failure can be looked at; the runner ends on a signal or when none is left.
    let stopping = false;
    let died = 0;
    for (const p of started) {
      void p.exited.then((how) => {
        if (stopping) return;
        died++;
        term.line(`\n${p.node.name} exited unexpectedly (${how}); last lines of ${p.logFile}:\n${p.tail()}\n(the other nodes keep running; Ctrl-C stops them)`);
      });
    }
    const allGone = Promise.all(started.map((p) => p.exited)).then(() => null);
    const signal = await Promise.race([stopRequested, allGone]);
    stopping = true;
    if (signal === null) {
      term.line('every node has exited');
      return 1;
    }
    term.line(`\n${signal}: stopping the tree`);
    return await stopAll(started, term, died > 0 ? 1 : 0);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAll);
  }
}

/** Parents before children (reverse start order): a root never forwards to a stopped branch. */
async function stopAll(started: NodeProcess[], term: Terminal, code: number): Promise<number> {
  for (const p of [...started].reverse()) {
    if (!p.running) continue;
    term.progress(`stopping ${p.node.name} ... `);
    term.finish(`stopped (${await p.stop()})`);
  }
  return code;
}
