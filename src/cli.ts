// The `etcd-tree` command.
import { parseFlags, usage } from './config/node-config.ts';
import { startNode } from './node.ts';
import { log, setLogLevel } from './telemetry/logger.ts';

async function main(argv: string[]): Promise<void> {
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
