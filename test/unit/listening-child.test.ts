// Starting a test server waits for the server itself to listen (test/support/listening-child.ts),
// never for whatever else answers on its port.
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PortTakenError, spawnListening } from '../support/listening-child.ts';
import { freePort } from '../support/ports.ts';

const node = (script: string) => [process.execPath, ['-e', script]] as const;

describe('spawnListening', () => {
  let held: Server | null = null;
  afterEach(() => new Promise<void>((r) => (held ? held.close(() => r()) : r())));

  async function holdPort(): Promise<number> {
    const port = await freePort();
    held = createServer();
    await new Promise<void>((r) => held!.listen(port, '127.0.0.1', r));
    return port;
  }

  it('resolves once the child listens on the port', async () => {
    const port = await freePort();
    const [cmd, args] = node(`setTimeout(() => require('net').createServer().listen(${port}, '127.0.0.1'), 300)`);
    const started = await spawnListening('server', cmd, [...args], {}, port, 10_000);
    try {
      expect(started.child.exitCode).toBeNull();
    } finally {
      started.child.kill('SIGKILL');
      await started.exited;
    }
  });

  it('a child that cannot bind because another process holds the port fails with PortTakenError', async () => {
    const port = await holdPort();
    const [cmd, args] = node(`require('net').createServer().listen(${port}, '127.0.0.1')`);
    const err = await spawnListening('server', cmd, [...args], {}, port, 10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortTakenError);
    expect((err as Error).message).toMatch(/server exited with 1 before listening[\s\S]*EADDRINUSE/);
  });

  it('another process answering on the port does not count as the child listening', async () => {
    const port = await holdPort();
    // A child that never listens, while this process accepts connections on its port.
    const [cmd, args] = node('setInterval(() => {}, 1000)');
    const err = await spawnListening('server', cmd, [...args], {}, port, 1_000).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(new RegExp(`nothing of pid \\d+ listens on 127.0.0.1:${port} after 1000 ms`));
  });
});
