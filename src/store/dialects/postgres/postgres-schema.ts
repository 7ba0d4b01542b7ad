// PostgreSQL spellings of the store's tables and statements. The statements are sql-text.ts's
// (ON CONFLICT ... excluded, row-value IN and partial indexes are all PostgreSQL) but for the
// head read, whose shared form PostgreSQL cannot run in O(limit), and a put written in one
// statement instead of three. The `?` placeholders become $1..$n in postgres-session.ts.
import { KV_COLUMNS, LOG_COLUMNS, ON_KEY_CONFLICT, ROW_PUT, perPutCount, placeholderTuples, sqlText, type KeyBound, type SqlText } from '../../sql-text.ts';
import { binaryCopyRead, type CopyColumn } from './postgres-binary-copy.ts';
import { replacePlaceholders } from './postgres-session.ts';

/**
 * A head page of at least this many rows (with values) is read as binary COPY: below it, a
 * prepared statement costs less than planning the COPY text (measured with 1 KiB values, the
 * two break even between 20 and 50 rows; at 100 rows COPY costs a third of the client CPU).
 */
export const BINARY_PAGE_MIN_ROWS = 32;

/** The head_page function's row: the head revision, then the current row (all NULL: no row). */
const HEAD_PAGE_COLUMNS: readonly CopyColumn[] = [
  { name: 'head', type: 'int8' },
  { name: 'k', type: 'bytea' },
  { name: 'create_rev', type: 'int8' },
  { name: 'mod_rev', type: 'int8' },
  { name: 'version', type: 'int8' },
  { name: 'lease', type: 'int8' },
  { name: 'value', type: 'bytea' },
];

/**
 * head_page(lo, hi, lim): the rows of [lo, hi) (hi NULL: no end) in key order, at most lim, each
 * with the leaf's head revision, or one row of NULLs carrying the head when there are none. A
 * function because COPY takes no parameters: with the bounds as literals the planner may sort
 * the whole range before the limit (stale statistics made that 28 ms instead of 2); the
 * function's statements take them as parameters, planned once per connection for any bounds
 * (force_generic_plan), like the prepared statements. STABLE: all of it reads one snapshot.
 * Its statements are the shared ones, their `?` bound to the arguments (`use_column`: the
 * names of its result columns do not hide the table's).
 */
function headPageFunction(p: string): string {
  const base = sqlText(p);
  const rows = (b: KeyBound) => {
    const args = b === 'bounded' ? ['lo', 'hi', 'lim'] : ['lo', 'lim'];
    // Outer ORDER BY: the subquery's order, kept without a sort (PostgreSQL sees it is sorted).
    return `SELECT h, r.* FROM (${replacePlaceholders(base.currentRows(b, true, 1), (n) => args[n - 1])}) r ORDER BY r.k`;
  };
  return `CREATE OR REPLACE FUNCTION ${p}head_page(lo BYTEA, hi BYTEA, lim BIGINT)
    RETURNS TABLE (head BIGINT, k BYTEA, create_rev BIGINT, mod_rev BIGINT, version BIGINT, lease BIGINT, value BYTEA)
    LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $fn$
    #variable_conflict use_column
    DECLARE
      h BIGINT := (${base.headRev});
    BEGIN
      IF hi IS NULL THEN
        RETURN QUERY ${rows('unbounded')};
      ELSE
        RETURN QUERY ${rows('bounded')};
      END IF;
      IF NOT FOUND THEN
        RETURN QUERY SELECT h, NULL::BYTEA, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BYTEA;
      END IF;
    END $fn$`;
}

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
    headPageFunction(p),
  ];
}

export function postgresStatements(p: string): SqlText {
  const base = sqlText(p);
  return {
    ...base,
    // One statement instead of three (a statement costs the client and the server far more than
    // the work in it): its CTEs see the snapshot before it, so `prev` holds the former rows,
    // which it answers; the log rows derive from them and the current rows copy the log rows.
    // The puts come in as a VALUES list (typed in its first row: parameters in VALUES are text
    // otherwise). Each former row is a lookup of its own (a LATERAL subquery with a LIMIT is
    // never flattened into a join): planned while the table was small, a join chose a scan of
    // the whole table with a hash, and the cached plan kept scanning as the table grew.
    putUnread: perPutCount((n) => [
      {
        sql: `WITH v (rev, seq, k, lease, value) AS (VALUES ${placeholderTuples(n, 5, '(?::bigint, ?::integer, ?::bytea, ?::bigint, ?::bytea)')}),
          prev AS (SELECT c.* FROM v CROSS JOIN LATERAL (SELECT ${KV_COLUMNS} FROM ${p}kv WHERE k = v.k LIMIT 1) c),
          l AS (INSERT INTO ${p}log (${LOG_COLUMNS})
            SELECT v.rev, v.seq, v.k, COALESCE(prev.create_rev, v.rev), COALESCE(prev.version, 0) + 1, v.lease, v.value, ${ROW_PUT}, COALESCE(prev.mod_rev, 0)
            FROM v LEFT JOIN prev ON prev.k = v.k RETURNING k, create_rev, rev, version, lease, value),
          u AS (INSERT INTO ${p}kv (${KV_COLUMNS})
            SELECT k, create_rev, rev, version, lease, value FROM l ${ON_KEY_CONFLICT})
          SELECT * FROM prev`,
        params: (puts) => puts.flatMap((a) => [a.rev, a.seq, a.key, a.lease, a.value]),
        answersPrev: true,
      },
    ]),
    // The shared form (a LEFT JOIN keeping the head when no key matches) makes PostgreSQL sort
    // the whole range before applying the LIMIT. Here the range is read in key order up to the
    // limit, once (a CTE), and a head-only row answers when it is empty: O(limit), still one
    // statement and one snapshot. Rows come out in the CTE's order: a plan with a CTE scan is
    // never parallel, and Append runs its branches in order.
    //
    // A page of values big enough goes as binary COPY of head_page (postgres-binary-copy.ts).
    headAndCurrentRows: (b, withValue, limit) => {
      if (withValue && limit >= BINARY_PAGE_MIN_ROWS) {
        return binaryCopyRead(`SELECT * FROM ${p}head_page(?, ${b === 'bounded' ? '?' : 'NULL'}, ?)`, HEAD_PAGE_COLUMNS);
      }
      const cols = `k, create_rev, mod_rev, version, lease${withValue ? ', value' : ''}`;
      const nulls = `NULL, NULL, NULL, NULL, NULL${withValue ? ', NULL' : ''}`;
      return `WITH r AS (${base.currentRows(b, withValue, limit)})
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
