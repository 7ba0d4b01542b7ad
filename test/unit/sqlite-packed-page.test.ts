// Packed SQLite pages (sqlite-packed-page.ts): a real SQLite packs rows of awkward bytes and they
// come back whole and in key order, even if the aggregate met them out of order; damaged packs
// are refused with a clear error.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isPackedPage, sqliteStatements, unpackPage } from '../../src/store/dialects/sqlite/sqlite-packed-page.ts';
import { sqlText } from '../../src/store/sql-text.ts';

const header = (k: Buffer, v: Buffer, revs: number[]) => Buffer.from(`${k.length},${v.length},${revs.join(',')};`, 'latin1');

describe('packed SQLite pages', () => {
  it('round-trip every byte value, empty values and NUL-only keys through a real SQLite', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE kv (k BLOB PRIMARY KEY, create_rev INTEGER, mod_rev INTEGER, version INTEGER, lease INTEGER, value BLOB)');
    db.exec('CREATE TABLE log (rev INTEGER)');
    db.exec('INSERT INTO log VALUES (77)');
    const insert = db.prepare('INSERT INTO kv VALUES (?, ?, ?, ?, ?, ?)');
    const rows = Array.from({ length: 40 }, (_, i) => ({
      k: i === 0 ? Buffer.from([0, 0]) : Buffer.from([i, 0xff, 0x3b, 0x2c]), // ';' and ',' inside keys
      create_rev: i + 1, mod_rev: i + 2, version: i + 3, lease: i === 5 ? 2 ** 52 : 0,
      value: i % 7 === 0 ? Buffer.alloc(0) : Buffer.from(Array.from({ length: 256 }, (_, j) => (j + i) % 256)),
    }));
    for (const r of [...rows].reverse()) insert.run(r.k, r.create_rev, r.mod_rev, r.version, r.lease, r.value);
    const sql = sqliteStatements(sqlText(''), '').headAndCurrentRows('unbounded', true, 41);
    expect(isPackedPage(sql)).toBe(true);
    expect(unpackPage(db.prepare(sql).get(Buffer.alloc(0), 41) as never)).toEqual(rows.map((r) => ({ head: 77, ...r })));
    // Empty: one row of NULLs carrying the head, as the store's head reads expect.
    expect(unpackPage(db.prepare(sql).get(Buffer.from([0xff, 0xff]), 41) as never)).toMatchObject([{ head: 77, k: null }]);
    // Small pages and keys-only reads are not packed.
    expect(isPackedPage(sqliteStatements(sqlText(''), '').headAndCurrentRows('unbounded', true, 2))).toBe(false);
    expect(isPackedPage(sqliteStatements(sqlText(''), '').currentRows('unbounded', false, 500))).toBe(false);
    db.close();
  });

  it('restores key order, and refuses damaged packs', () => {
    const a = { k: Buffer.from('a'), v: Buffer.from('1') };
    const b = { k: Buffer.from('b'), v: Buffer.from('22') };
    const page = Buffer.concat([header(b.k, b.v, [1, 2, 3, 0]), b.k, b.v, header(a.k, a.v, [4, 5, 6, 0]), a.k, a.v]);
    expect(unpackPage({ n: 2, page }).map((r) => r.k!.toString())).toEqual(['a', 'b']);
    expect(() => unpackPage({ n: 2, page: page.subarray(0, page.length - 1) })).toThrow(/cut short/);
    expect(() => unpackPage({ n: 1, page })).toThrow(/after the last row/);
    expect(() => unpackPage({ n: 3, page })).toThrow(/no header/);
  });
});
