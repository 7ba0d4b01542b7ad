// PostgreSQL spellings of the store's tables and statements. The statements are sql-text.ts's
// (ON CONFLICT ... excluded, row-value IN and partial indexes are all PostgreSQL) but for the
// head read, whose shared form PostgreSQL cannot run in O(limit), and a put written in one
// statement instead of three. The `?` placeholders become $1..$n in postgres-session.ts.
import { ON_KEY_CONFLICT, ROW_PUT, sqlText, type SqlText } from '../../sql-text.ts';

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
  const base = sqlText(p);
  return {
    ...base,
    // One statement instead of three (a statement costs the client and the server far more than
    // the work in it): its CTEs see the snapshot before it, so `prev` is the former row, which
    // it answers; the log row derives from it and the current row copies the log row.
    putUnread: [
      {
        sql: `WITH prev AS (SELECT k, create_rev, mod_rev, version, lease, value FROM ${p}kv WHERE k = ?),
          l AS (INSERT INTO ${p}log (rev, seq, k, create_rev, version, lease, value, kind, prev_rev)
            SELECT ?, ?, ?, COALESCE(max(create_rev), ?), COALESCE(max(version), 0) + 1, ?, ?, ${ROW_PUT}, COALESCE(max(mod_rev), 0)
            FROM prev RETURNING k, create_rev, rev, version, lease, value),
          u AS (INSERT INTO ${p}kv (k, create_rev, mod_rev, version, lease, value)
            SELECT k, create_rev, rev, version, lease, value FROM l ${ON_KEY_CONFLICT})
          SELECT * FROM prev`,
        params: (a) => [a.key, a.rev, a.seq, a.key, a.rev, a.lease, a.value],
        answersPrev: true,
      },
    ],
    // The shared form (a LEFT JOIN keeping the head when no key matches) makes PostgreSQL sort
    // the whole range before applying the LIMIT. Here the range is read in key order up to the
    // limit, once (a CTE), and a head-only row answers when it is empty: O(limit), still one
    // statement and one snapshot. Rows come out in the CTE's order: a plan with a CTE scan is
    // never parallel, and Append runs its branches in order.
    headAndCurrentRows: (b, withValue, limited) => {
      const cols = `k, create_rev, mod_rev, version, lease${withValue ? ', value' : ''}`;
      const nulls = `NULL, NULL, NULL, NULL, NULL${withValue ? ', NULL' : ''}`;
      return `WITH r AS (${base.currentRows(b, withValue, limited)})
        SELECT (SELECT max(rev) FROM ${p}log) AS head, ${cols} FROM r
        UNION ALL SELECT (SELECT max(rev) FROM ${p}log), ${nulls} WHERE NOT EXISTS (SELECT 1 FROM r)`;
    },
  };
}

/** The leaf's write lock: the schema_version row, held until commit (see sql-text.ts, meta). */
export function postgresWriteLock(p: string): string {
  return `SELECT value FROM ${p}meta WHERE name = 'schema_version' FOR UPDATE`;
}

/** The tables whose sizes make up the leaf's dbSize. */
export function postgresTables(p: string): string[] {
  return ['meta', 'log', 'kv', 'lease'].map((t) => `${p}${t}`);
}
