// PostgreSQL spellings of the store's tables and statements. The statements are sql-text.ts's
// unchanged (ON CONFLICT ... excluded, row-value IN and partial indexes are all PostgreSQL);
// only the `?` placeholders differ, and postgres-session.ts turns them into $1..$n.
import { sqlText, type SqlText } from '../../sql-text.ts';

/** Keys and values are bytea (raw bytes, ordered like memcmp); revisions and leases bigint. */
export function postgresSchema(p: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${p}meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${p}log (rev BIGINT NOT NULL, seq INTEGER NOT NULL, k BYTEA NOT NULL,
      create_rev BIGINT NOT NULL, version BIGINT NOT NULL, lease BIGINT NOT NULL, value BYTEA NOT NULL,
      kind SMALLINT NOT NULL, prev_rev BIGINT NOT NULL)`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${p}log_rev ON ${p}log (rev, seq)`,
    `CREATE INDEX IF NOT EXISTS ${p}log_key_rev ON ${p}log (k, rev)`,
    // fillfactor leaves room on each page so that updating a key's row is a HOT update (no
    // index change): only value, revisions and version change, none of them indexed.
    `CREATE TABLE IF NOT EXISTS ${p}kv (k BYTEA PRIMARY KEY, create_rev BIGINT NOT NULL, mod_rev BIGINT NOT NULL,
      version BIGINT NOT NULL, lease BIGINT NOT NULL, value BYTEA NOT NULL) WITH (fillfactor = 80)`,
    `CREATE INDEX IF NOT EXISTS ${p}kv_lease ON ${p}kv (lease) WHERE lease <> 0`,
    `CREATE TABLE IF NOT EXISTS ${p}lease (id BIGINT PRIMARY KEY, ttl BIGINT NOT NULL)`,
  ];
}

export function postgresStatements(p: string): SqlText {
  return sqlText(p);
}

/** The leaf's write lock: the schema_version row, held until commit (see sql-text.ts, meta). */
export function postgresWriteLock(p: string): string {
  return `SELECT value FROM ${p}meta WHERE name = 'schema_version' FOR UPDATE`;
}

/** The tables whose sizes make up the leaf's dbSize. */
export function postgresTables(p: string): string[] {
  return ['meta', 'log', 'kv', 'lease'].map((t) => `${p}${t}`);
}
