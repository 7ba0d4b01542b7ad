// `etcd-tree tree DIR`: a two-level tree from config files (a root routing to one SQLite
// branch) started by the real command, used through the root, stopped root first on SIGTERM.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisKeys, REDIS_URL, uniqueRedisPrefix } from '../support/redis-prefix.ts';
import { connectEtcd } from '../support/etcd-client.ts';
import { projectRoot } from '../support/etcd-tree-process.ts';
import { freePort } from '../support/ports.ts';

let dir: string;
const redisPrefix = uniqueRedisPrefix();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tree-runner-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await deleteRedisKeys(redisPrefix);
});

function writeNode(name: string, settings: Record<string, string>, topology: string): void {
  mkdirSync(join(dir, 'nodes', name, 'topology.d'), { recursive: true });
  const yaml = Object.entries({ ...settings, 'revision-store': REDIS_URL, 'revision-prefix': `"${redisPrefix}"`, 'topology-dir': 'topology.d' })
    .map(([k, v]) => `${k}: ${v}\n`)
    .join('');
  writeFileSync(join(dir, 'nodes', name, 'node.yaml'), yaml);
  writeFileSync(join(dir, 'nodes', name, 'topology.d', '00.yaml'), topology);
}

describe('etcd-tree tree', () => {
  it('starts branches before the root, serves through the root, stops the root first', async () => {
    const [root, rootMetrics, branch, branchMetrics] = [await freePort(), await freePort(), await freePort(), await freePort()];
    writeNode(
      'root',
      { name: 'root', 'listen-client-urls': `http://127.0.0.1:${root}`, 'listen-metrics-urls': `http://127.0.0.1:${rootMetrics}`, 'data-dir': '../../data/root' },
      `backends:\n  below:\n    kind: node\n    endpoints: [http://127.0.0.1:${branch}]\nroutes:\n  - { prefix: "", to: below }\n`,
    );
    writeNode(
      'below',
      { name: 'below', 'tree-role': 'branch', 'listen-client-urls': `[http://127.0.0.1:${branch}]`, 'listen-metrics-urls': `http://127.0.0.1:${branchMetrics}`, 'data-dir': '../../data/below' },
      'backends:\n  local:\n    kind: sqlite\n    path: local.db\nroutes:\n  - { prefix: "", to: local }\n',
    );

    // cwd = the temp dir: the runner's log directory (data/tree/logs) is relative to it.
    // The installed command (bin/ registers tsx itself: `--import tsx` would not resolve from there).
    const runner = spawn(process.execPath, [join(projectRoot, 'bin/etcd-tree.js'), 'tree', 'nodes'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info' },
    });
    let out = '';
    runner.stdout.on('data', (d: Buffer) => (out += d.toString()));
    runner.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => runner.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!out.includes('The tree is up')) {
        if (runner.exitCode !== null || Date.now() > deadline) throw new Error(`the tree did not come up:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out.indexOf('starting below')).toBeLessThan(out.indexOf('starting root'));
      // (warnings of the node may come between: a branch waits for the root to set up the revision counter)
      expect(out).toMatch(/starting below \(http:\/\/127\.0\.0\.1:\d+\) \.\.\. [\s\S]*?ready in \d+\.\ds/);
      expect(out).toContain(`Its root: http://127.0.0.1:${root}`);
      expect(out).toMatch(/""\s+-> below\s+\(nodes\/root\/topology\.d\/00\.yaml:6\)/);

      const viaRoot = connectEtcd(`127.0.0.1:${root}`);
      const atBranch = connectEtcd(`127.0.0.1:${branch}`);
      try {
        await viaRoot.kv.put({ key: Buffer.from('/registry/configmaps/default/a'), value: Buffer.from('1') });
        const got = await atBranch.kv.range({ key: Buffer.from('/registry/configmaps/default/a') });
        expect(got.kvs.map((kv: { value: Buffer }) => kv.value.toString())).toEqual(['1']);
      } finally {
        viaRoot.close();
        atBranch.close();
      }
    } finally {
      runner.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out.indexOf('stopping root')).toBeGreaterThan(0);
    expect(out.indexOf('stopping root')).toBeLessThan(out.indexOf('stopping below'));
    expect(out).toMatch(/stopping below \.\.\. stopped \(code 0\)/);
    // Info lines go to the log files only; the console shows warnings and errors.
    expect(out).not.toContain('"level":"info"');
    expect(readFileSync(join(dir, 'data/tree/logs/root.log'), 'utf8')).toContain('etcd-tree node serving');
    expect(existsSync(join(dir, 'data/below/local.db'))).toBe(true);
  });
});
