// --config-file: YAML settings under the flag names, overridden by the command line; every
// error names the file and the line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/config/node-config.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-file-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const file = (text: string) => {
  const path = join(dir, 'node.yaml');
  writeFileSync(path, text);
  return path;
};

describe('--config-file', () => {
  it('reads every kind of setting: strings, numbers, durations, lists and booleans', () => {
    const path = file(
      [
        'name: branch-a',
        'listen-client-urls: [http://127.0.0.1:23791, http://127.0.0.1:23793]',
        'listen-metrics-urls:',
        '  - http://127.0.0.1:23811',
        'advertise-client-urls: http://a:1,http://b:2',
        'max-txn-ops: 64',
        'revision-deadline: 2s',
        'revision-store: redis://127.0.0.1:6379/0',
        'revision-prefix: "etcd-tree-example:"',
        'trusted-ca-file: /pki/ca.pem',
        'client-cert-auth: true',
        'tree-role: branch',
        '',
      ].join('\n'),
    );
    const c = parseFlags(['--config-file', path]);
    expect(c).toMatchObject({
      name: 'branch-a',
      listenClientUrls: ['http://127.0.0.1:23791', 'http://127.0.0.1:23793'],
      listenMetricsUrls: ['http://127.0.0.1:23811'],
      advertiseClientUrls: ['http://a:1', 'http://b:2'],
      maxTxnOps: 64,
      revisionDeadlineMs: 2000,
      revisionStore: 'redis://127.0.0.1:6379/0',
      revisionPrefix: 'etcd-tree-example:',
      clientCertAuth: true,
      treeRole: 'branch',
      configFile: path,
    });
  });

  it('resolves relative paths against the directory of the file', () => {
    const path = file('data-dir: ../data/tree/root\ntopology-dir: topology.d\ncert-file: pki/s.pem\nkey-file: /abs/s-key.pem\n');
    const c = parseFlags([`--config-file=${path}`]);
    expect(c.dataDir).toBe(join(dir, '../data/tree/root'));
    expect(c.topologyDir).toBe(join(dir, 'topology.d'));
    expect(c.certFile).toBe(join(dir, 'pki/s.pem'));
    expect(c.keyFile).toBe('/abs/s-key.pem');
  });

  it('lets flags on the command line override the file, wherever they stand', () => {
    const path = file('name: from-file\nmax-txn-ops: 64\nlisten-client-urls: http://127.0.0.1:1\n');
    const c = parseFlags(['--name', 'from-flag', '--config-file', path, '--listen-client-urls', 'http://127.0.0.1:2']);
    expect(c.name).toBe('from-flag');
    expect(c.maxTxnOps).toBe(64);
    expect(c.listenClientUrls).toEqual(['http://127.0.0.1:2']);
    expect(c.advertiseClientUrls).toEqual(['http://127.0.0.1:2']);
  });

  it('takes an empty file as no settings', () => {
    expect(parseFlags(['--config-file', file('# nothing yet\n')])).toMatchObject({ name: 'default', treeRole: 'root' });
  });

  const errors: Array<[string, string, RegExp]> = [
    ['an unknown key', 'name: a\nlisten-peer-urls: http://x\n', /node\.yaml:2: unknown setting "listen-peer-urls"/],
    ['a key given twice', 'name: a\nname: b\n', /node\.yaml:2: invalid YAML: Map keys must be unique/],
    ['a bad value, at its line', 'name: a\n\nmax-txn-ops: many\n', /node\.yaml:3: max-txn-ops needs a positive integer, got "many"/],
    ['a bad tree role', 'tree-role: trunk\n', /node\.yaml:1: tree-role takes root or branch, got "trunk"/],
    ['a string for a boolean', 'client-cert-auth: "yes"\n', /node\.yaml:1: "client-cert-auth" takes true or false/],
    ['a boolean for a value', 'name: true\n', /node\.yaml:1: "name" takes a value, not true or false/],
    ['a list for a single value', 'name: [a, b]\n', /node\.yaml:1: "name" takes one value, not a list/],
    ['a mapping for a value', 'data-dir:\n  path: x\n', /node\.yaml:2: "data-dir" takes a single value, not a mapping/],
    ['a missing value', 'name:\n', /node\.yaml:1: "name" needs a value/],
    ['config-file inside the file', 'config-file: other.yaml\n', /node\.yaml:1: "config-file" can only be given on the command line/],
    ['a file that is not a mapping', '- name\n', /node\.yaml:1: a config file must be a mapping/],
    ['invalid YAML', 'name: [\n', /node\.yaml:\d+: invalid YAML/],
  ];
  for (const [name, text, message] of errors) {
    it(`refuses ${name}, naming file and line`, () => {
      expect(() => parseFlags(['--config-file', file(text)])).toThrow(message);
    });
  }

  it('refuses a missing file and a second --config-file', () => {
    expect(() => parseFlags(['--config-file', join(dir, 'nope.yaml')])).toThrow(/cannot read config file .*nope\.yaml: ENOENT/);
    const path = file('name: a\n');
    expect(() => parseFlags(['--config-file', path, '--config-file', path])).toThrow(/--config-file is given more than once/);
  });
});

describe('--tree-role', () => {
  it('defaults to root and takes branch', () => {
    expect(parseFlags([]).treeRole).toBe('root');
    expect(parseFlags(['--tree-role', 'branch']).treeRole).toBe('branch');
    expect(() => parseFlags(['--tree-role', 'leaf'])).toThrow(/--tree-role takes root or branch, got "leaf"/);
  });
});
