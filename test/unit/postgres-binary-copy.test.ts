// Binary COPY reads (postgres-binary-copy.ts) against a real PostgreSQL: parameters written in as
// literals select exactly what bind parameters would, and the binary rows decode to the same
// values node-postgres gives in text format; damaged data is refused with a clear error.
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBinaryCopy, inlineParams, type CopyColumn } from '../../src/store/dialects/postgres/postgres-binary-copy.ts';
import { POSTGRES_URL } from '../integration/store/store-backends.ts';

const awkward = ["it's a \\ 'quote' ?", Buffer.from([0x00, 0xff, 0x27, 0x5c]), Buffer.alloc(0), null, 42, -7, 2 ** 53 - 1];

describe('binary COPY reads', () => {
  let client: pg.Client;
  beforeAll(async () => {
    client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
  });

  async function copy(text: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of client.query(copyTo(text))) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  it('inlined parameters select what bind parameters select', async () => {
    for (const param of awkward) {
      const type = Buffer.isBuffer(param) ? 'bytea' : typeof param === 'number' ? 'bigint' : 'text';
      const bound = await client.query({ text: `SELECT $1::${type} AS v`, values: [param] });
      const inline = await client.query(inlineParams(`SELECT (?)::${type} AS v, '?' AS q`, [param]));
      expect(inline.rows[0]).toEqual({ ...bound.rows[0], q: '?' });
    }
    expect(() => inlineParams('SELECT ?, ?', [1])).toThrow(/more placeholders/);
    expect(() => inlineParams('SELECT ?', [1.5])).toThrow(/integer/);
  });

  it('decodes rows as node-postgres does in text format, NULLs and empty bytes included', async () => {
    const columns: CopyColumn[] = [
      { name: 'n', type: 'int8' },
      { name: 'b', type: 'bytea' },
    ];
    const select = `SELECT * FROM (VALUES (?::bigint, ?::bytea), (-1, ''::bytea), (NULL, NULL), (0, '\\x00ff'::bytea)) AS t (n, b)`;
    const params = [2 ** 53 - 1, Buffer.from('value with \u0000 and \u00ff')];
    const text = await client.query({ text: select.replace('?', '$1').replace('?', '$2'), values: params });
    const rows = decodeBinaryCopy(await copy(`COPY (${inlineParams(select, params)}) TO STDOUT (FORMAT binary)`), columns);
    expect(rows).toEqual(text.rows.map((r: { n: string | null; b: Buffer | null }) => ({ n: r.n === null ? null : Number(r.n), b: r.b })));
  });

  it('refuses data that is cut short or is not binary COPY', async () => {
    const columns: CopyColumn[] = [{ name: 'b', type: 'bytea' }];
    const whole = await copy(`COPY (SELECT '\\x0102'::bytea) TO STDOUT (FORMAT binary)`);
    expect(decodeBinaryCopy(whole, columns)).toEqual([{ b: Buffer.from([1, 2]) }]);
    expect(() => decodeBinaryCopy(whole.subarray(0, whole.length - 3), columns)).toThrow(/malformed binary COPY/);
    expect(() => decodeBinaryCopy(Buffer.from('not copy data at all'), columns)).toThrow(/no signature/);
    expect(() => decodeBinaryCopy(whole, [...columns, { name: 'x', type: 'int8' }])).toThrow(/1 fields, expected 2/);
  });
});
