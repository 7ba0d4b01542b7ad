// Topology validation: every error names the file, the line and the problem.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeTopology, loadTopology } from '../../src/topology/load-topology.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'topology-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
const load = (env: NodeJS.ProcessEnv = {}) => loadTopology(dir, '/data', env);
const base = 'backends:\n  local:\n    kind: sqlite\n    path: default.db\nroutes:\n  - prefix: ""\n    to: local\n';

describe('topology files', () => {
  it('merges files in lexical order and resolves sqlite paths against the data dir', () => {
    write('00-default.yaml', base);
    write('10-events.yaml', 'backends:\n  events:\n    kind: postgres\n    url: postgres://postgres@127.0.0.1:5432/events\n    pool: { max: 5 }\n    table: ev\nroutes:\n  - prefix: /registry/events/\n    to: events\n');
    write('20-pods.yaml', 'routes:\n  - prefix: /registry/pods/\n    shards: [local, events]\n    shardSegment: 0\n');
    const t = load();
    expect([...t.backends.keys()]).toEqual(['local', 'events']);
    expect(t.backends.get('local')).toMatchObject({ kind: 'sqlite', path: '/data/default.db' });
    expect(t.backends.get('events')).toMatchObject({ kind: 'postgres', poolMax: 5, table: 'ev' });
    expect(t.routes.map((r) => [r.prefix, r.to, r.shardSegment])).toEqual([
      ['', ['local'], null],
      ['/registry/events/', ['events'], null],
      ['/registry/pods/', ['local', 'events'], 0],
    ]);
    expect(describeTopology(t)).toContain('shards [local, events] by key segment 0');
  });

  it('expands ${ENV} references and never prints the secret', () => {
    write('00.yaml', base);
    write('10.yaml', 'backends:\n  pg:\n    kind: postgres\n    url: postgres://app:${PG_PASSWORD}@127.0.0.1:5432/db\n');
    const t = load({ PG_PASSWORD: 's3cret' });
    const pg = t.backends.get('pg')!;
    expect(pg.kind === 'postgres' && pg.url).toBe('postgres://app:s3cret@127.0.0.1:5432/db');
    expect(describeTopology(t)).not.toContain('s3cret');
  });

  const errors: Array<[string, Record<string, string>, RegExp]> = [
    ['unknown backend', { '00.yaml': base + '  - prefix: /a/\n    to: nowhere\n' }, /00\.yaml:9: route "\/a\/" goes to unknown backend "nowhere"/],
    ['duplicate prefix across files', { '00.yaml': base, '10.yaml': 'routes:\n  - prefix: ""\n    to: local\n' }, /10\.yaml:2: a route for prefix "" is already defined at .*00\.yaml:6/],
    ['duplicate backend across files', { '00.yaml': base, '10.yaml': 'backends:\n  local:\n    kind: sqlite\n    path: x.db\n' }, /10\.yaml:2: backend "local" is already defined at .*00\.yaml:3/],
    ['unknown field', { '00.yaml': base.replace('    path: default.db\n', '    path: default.db\n    colour: blue\n') }, /00\.yaml:5: unknown field "colour" in backend "local"/],
    ['bad URL', { '00.yaml': base, '10.yaml': 'backends:\n  pg:\n    kind: postgres\n    url: "not a url"\n' }, /10\.yaml:4: url is not a valid URL/],
    ['wrong URL scheme', { '00.yaml': base, '10.yaml': 'backends:\n  pg:\n    kind: postgres\n    url: mysql://root@127.0.0.1/db\n' }, /10\.yaml:4: a postgres url must start with postgres:/],
    ['missing env var', { '00.yaml': base, '10.yaml': 'backends:\n  pg:\n    kind: mysql\n    url: mysql://root:${NOPE}@127.0.0.1/db\n' }, /10\.yaml:4: url refers to environment variable NOPE, which is not set/],
    ['unknown kind', { '00.yaml': base.replace('kind: sqlite', 'kind: oracle') }, /00\.yaml:3: unknown backend kind "oracle"/],
    ['invalid YAML', { '00.yaml': 'backends: [\n' }, /00\.yaml:\d+: invalid YAML/],
    ['no catch-all', { '00.yaml': base.replace('prefix: ""', 'prefix: /x/') }, /no catch-all route/],
    ['to and shards together', { '00.yaml': base + '  - prefix: /p/\n    to: local\n    shards: [local, local]\n' }, /00\.yaml:8: a route needs exactly one of/],
    ['a single shard', { '00.yaml': base + '  - prefix: /p/\n    shards: [local]\n' }, /00\.yaml:9: shards needs at least two backends/],
    ['negative shardSegment', { '00.yaml': base + '  - prefix: /p/\n    shards: [local, local2]\n    shardSegment: -1\n' }, /shardSegment must be an integer >= 0/],
  ];
  for (const [name, files, message] of errors) {
    it(`refuses ${name}, naming file and line`, () => {
      for (const [file, text] of Object.entries(files)) write(file, text);
      expect(() => load()).toThrow(message);
    });
  }
});
