// The `etcd-tree` command.
import { parseFlags, usage } from './config/node-config.ts';
import { startNode } from './node.ts';
import { describeTopology, loadTopology } from './topology/load-topology.ts';
import { log, setLogLevel } from './telemetry/logger.ts';
import { treeCommand } from './tree/tree-runner.ts';

/** `etcd-tree topology check DIR [--data-dir D]`: validate and print the resolved route table. */
function topologyCheck(args: string[]): void {
  const dir = args[0];
  if (!dir) {
    process.stderr.write('usage: etcd-tree topology check DIR [--data-dir DIR]\n');
    process.exit(2);
  }
  const dataDirAt = args.indexOf('--data-dir');
  const dataDir = dataDirAt >= 0 ? args[dataDirAt + 1] : './data';
  try {
    process.stdout.write(`${describeTopology(loadTopology(dir, dataDir))}\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'topology' && argv[1] === 'check') return topologyCheck(argv.slice(2));
  if (argv[0] === 'tree') return treeCommand(argv.slice(1));
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return;
  }
  let config;
  try {
    config = parseFlags(argv);
  } catch (err) {
    process.stderr.write(`etcd-tree: ${(err as Error).message}\n`);
    process.exit(2);
  }
  setLogLevel(config.logLevel);
  const node = await startNode(config);
  let signalled = false;
  const onSignal = (signal: string) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, 'signal received');
    node.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

main(process.argv.slice(2)).catch((err) => {
  log.fatal({ err }, 'etcd-tree could not start');
  process.exit(1);
});
