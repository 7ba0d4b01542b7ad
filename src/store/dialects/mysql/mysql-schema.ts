// MySQL/MariaDB spellings of the store's tables and statements: sql-text.ts with the upsert as
// ON DUPLICATE KEY UPDATE, a compaction and a head read MySQL runs well; InnoDB tables, keys
// VARBINARY, values LONGBLOB, no partial index.
import { sqlText, type SqlText } from '../../sql-text.ts';

/**
 * The longest key MySQL can hold. InnoDB indexes at most 3072 bytes per index (DYNAMIC rows),
 * and the log's (k, rev) index adds the 8 bytes of rev: keys are VARBINARY(3064). A longer key
 * fails (strict sql_mode, see mysql-dialect.ts) instead of being truncated.
 */
export const MYSQL_MAX_KEY_BYTES = 3064;

const engine = 'ENGINE=InnoDB ROW_FORMAT=DYNAMIC';

/** Indexes are declared inside CREATE TABLE: MySQL has no CREATE INDEX IF NOT EXISTS. */
export function mysqlSchema(p: string): string[] {
  const key = `VARBINARY(${MYSQL_MAX_KEY_BYTES})`;
  return [
    `CREATE TABLE IF NOT EXISTS ${p}meta (name VARCHAR(64) NOT NULL PRIMARY KEY, value BIGINT NOT NULL) ${engine}`,
    // (rev, seq) is the primary key: the UNIQUE (rev, seq) of sql-text.ts, and InnoDB keeps the
    // rows in revision order (appends at the end; events read revisions in ranges).
    `CREATE TABLE IF NOT EXISTS ${p}log (rev BIGINT NOT NULL, seq INT NOT NULL, k ${key} NOT NULL,
      create_rev BIGINT NOT NULL, version BIGINT NOT NULL, lease BIGINT NOT NULL, value LONGBLOB NOT NULL,
      kind TINYINT NOT NULL, prev_rev BIGINT NOT NULL,
      PRIMARY KEY (rev, seq), KEY ${p}log_key_rev (k, rev)) ${engine}`,
    `CREATE TABLE IF NOT EXISTS ${p}kv (k ${key} NOT NULL PRIMARY KEY, create_rev BIGINT NOT NULL,
      mod_rev BIGINT NOT NULL, version BIGINT NOT NULL, lease BIGINT NOT NULL, value LONGBLOB NOT NULL,
      KEY ${p}kv_lease (lease)) ${engine}`,
    `CREATE TABLE IF NOT EXISTS ${p}lease (id BIGINT NOT NULL PRIMARY KEY, ttl BIGINT NOT NULL) ${engine}`,
  ];
}

export function mysqlStatements(p: string): SqlText {
  return {
    // VALUES(col) rather than the newer row alias: MariaDB knows only VALUES().
    ...sqlText(
      p,
      `ON DUPLICATE KEY UPDATE create_rev = VALUES(create_rev), mod_rev = VALUES(mod_rev),
      version = VALUES(version), lease = VALUES(lease), value = VALUES(value)`,
    ),
    // MySQL refuses a DELETE whose subquery reads the table it deletes from; a multi-table
    // DELETE joining the log with itself says the same (same parameters: lo, hi).
    compactSuperseded: `DELETE l FROM ${p}log l JOIN ${p}log s ON l.k = s.k AND l.rev = s.prev_rev
      WHERE s.rev >= ? AND s.rev < ? AND s.prev_rev > 0`,
    // The shared form (a LEFT JOIN keeping the head when no key matches) makes MySQL sort the
    // whole range before the LIMIT, and every single-statement way to keep the head for an
    // empty range costs a temporary table. So: two statements, the rows (each with the head)
    // in key order up to the limit, then the head alone; mysql-session.ts answers a text of
    // several statements with the first non-empty result. Read after the rows, that head can
    // only be higher than theirs: the caller, which checks it is not above its revision, stays
    // exact (an empty range at a head <= rev is empty at rev).
    headAndCurrentRows: (b, withValue, limit) =>
      `SELECT (SELECT max(rev) FROM ${p}log) AS head, k, create_rev, mod_rev, version, lease${withValue ? ', value' : ''}
       FROM ${p}kv WHERE ${b === 'bounded' ? 'k >= ? AND k < ?' : 'k >= ?'} ORDER BY k${limit > 0 ? ' LIMIT ?' : ''};
       SELECT max(rev) AS head, NULL AS k FROM ${p}log`,
  };
}

/** The leaf's write lock: the schema_version row, held until commit (see sql-text.ts, meta). */
export function mysqlWriteLock(p: string): string {
  return `SELECT value FROM ${p}meta WHERE name = 'schema_version' FOR UPDATE`;
}

/** The tables whose sizes make up the leaf's dbSize. */
export function mysqlTables(p: string): string[] {
  return ['meta', 'log', 'kv', 'lease'].map((t) => `${p}${t}`);
}
