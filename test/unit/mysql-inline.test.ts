// Statements with their parameters inline (mysql-session.ts inlineStatement): the same text
// mysql2's own format makes, for every statement of the store and awkward parameters.
import mysql from 'mysql2';
import { describe, expect, it } from 'vitest';
import { mysqlStatements } from '../../src/store/dialects/mysql/mysql-schema.ts';
import { inlineStatement } from '../../src/store/dialects/mysql/mysql-session.ts';

const awkward = [Buffer.from("it's a \\ 'quote' ? \u0000"), 'text ? with ?', null, 42, Buffer.alloc(0), -7, Buffer.from([0xff, 0x00, 0x27])];

describe('inlineStatement', () => {
  it('makes the text mysql2 format makes, again and again', () => {
    const sql = mysqlStatements('t_');
    // [text, placeholders]: store SQL has no `?` inside literals; the last text has two.
    const texts: Array<[string, number]> = [
      sql.insertLog, sql.upsertCurrent, sql.currentOne, sql.metaUpdate, sql.events, sql.currentRows('bounded', true, 501),
      ...sql.putUnread(1).map((s) => s.sql),
      ...sql.putUnread(3).map((s) => s.sql),
    ].map((text) => [text, text.split('?').length - 1]);
    texts.push(["SELECT '?' AS q, ? AS p, `a?b` AS c FROM t WHERE x = ?", 2]);
    for (const [text, n] of texts) {
      for (let round = 0; round < 2; round++) {
        const params = Array.from({ length: n }, (_, i) => awkward[(i + round) % awkward.length]);
        expect(inlineStatement(text, params), text).toBe(mysql.format(text, params));
      }
    }
  });
});
