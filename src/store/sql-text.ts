// The SQL statements of the MVCC store, written once in portable SQL with `?` placeholders;
// a dialect overrides only what its database spells differently (see Dialect.statements).
// Tables (per leaf, names prefixed so several leaves can share one database):
//   <p>log   one row per (revision, key) change: the history. (rev, seq) is unique, so a
//            revision's first row (seq 0) exists once per leaf: a fencing gap row and a late
//            writer can never both commit the same revision.
//   <p>kv    the latest live row per key: head reads never touch history.
//   <p>meta  schema version, compacted revision, generation; its rows double as the leaf's
//            write lock on servers shared by several writers.
//   <p>lease granted leases (ID, TTL).
// The key column is `k` (KEY is reserved in MySQL). Row kinds in the log: 0 put, 1 delete
// (tombstone), 2 gap (a revision fenced with no data).

import type { SqlParam } from './dialect.ts';

export const ROW_PUT = 0;
export const ROW_DELETE = 1;
export const ROW_GAP = 2;

export const SCHEMA_VERSION = 1;

/** The columns of a log row and of a current row, in the order the inserts give them. */
export const LOG_COLUMNS = 'rev, seq, k, create_rev, version, lease, value, kind, prev_rev';
export const KV_COLUMNS = 'k, create_rev, mod_rev, version, lease, value';

export type KeyBound = 'bounded' | 'unbounded';

/** What an insert into the current table does when the key is there: it takes the new row's values. */
export const ON_KEY_CONFLICT = `ON CONFLICT (k) DO UPDATE SET create_rev = excluded.create_rev, mod_rev = excluded.mod_rev,
      version = excluded.version, lease = excluded.lease, value = excluded.value`;

/** What a put whose key's former state is not known writes with (see SqlText.putUnread). */
export interface PutArgs {
  rev: number;
  seq: number;
  key: Buffer;
  lease: number;
  value: Buffer;
}

/**
 * A statement of n puts (distinct keys) written without waiting for the keys' former state
 * (txn-executor.ts, WriteTx.putLater): run in order; the one that `answersPrev` answers with the
 * former row of every key that had one (new keys have none), matched to its put by k.
 */
export interface PutUnreadStatement {
  sql: string;
  params(puts: readonly PutArgs[]): SqlParam[];
  answersPrev?: true;
}

/** The statements of n puts at once (n >= 1), their texts built once per n. */
export type PutUnreadStatements = (n: number) => readonly PutUnreadStatement[];

/** `build(n)` remembered per n (a statement text is also a prepared statement's identity). */
export function perPutCount(build: (n: number) => PutUnreadStatement[]): PutUnreadStatements {
  const built = new Map<number, PutUnreadStatement[]>();
  return (n) => {
    let statements = built.get(n);
    if (!statements) built.set(n, (statements = build(n)));
    return statements;
  };
}

/** `(?, ?), (?, ?)`: n tuples of `width` placeholders; `first` (when given) spells the first tuple. */
export function placeholderTuples(n: number, width: number, first?: string): string {
  const plain = `(${Array(width).fill('?').join(', ')})`;
  return Array.from({ length: n }, (_, i) => (i === 0 && first ? first : plain)).join(', ');
}

/**
 * Portable, three statements however many puts (parsing, planning and answering a statement
 * cost the server far more than the rows in it): the former rows are read first (by key), then
 * log rows take create_rev, version and prev_rev from the keys' current rows, then the current
 * rows are copied from those log rows. Several puts come in as a derived table joined to their
 * current rows. A put alone reads its row by key with an aggregate (one row whether the key
 * exists or not): on MariaDB the derived table of one row cost a sequential put 10% more CPU.
 * @param currentOf the current rows of n keys
 */
function putUnreadStatements(p: string, onKeyConflict: string, currentOf: (n: number) => string): PutUnreadStatements {
  const logInsert = `INSERT INTO ${p}log (${LOG_COLUMNS})`;
  const copyToCurrent = `INSERT INTO ${p}kv (${KV_COLUMNS})
          SELECT k, create_rev, rev, version, lease, value FROM ${p}log`;
  return perPutCount((n) => {
    const formerRows: PutUnreadStatement = { sql: currentOf(n), params: (all) => all.map((a) => a.key), answersPrev: true };
    if (n === 1) {
      return [
        formerRows,
        {
          sql: `${logInsert}
          SELECT ?, ?, ?, COALESCE(max(c.create_rev), ?), COALESCE(max(c.version), 0) + 1, ?, ?, ${ROW_PUT}, COALESCE(max(c.mod_rev), 0)
          FROM ${p}kv c WHERE c.k = ?`,
          params: ([a]) => [a.rev, a.seq, a.key, a.rev, a.lease, a.value, a.key],
        },
        { sql: `${copyToCurrent} WHERE rev = ? AND seq = ? ${onKeyConflict}`, params: ([a]) => [a.rev, a.seq] },
      ];
    }
    const puts = Array.from({ length: n - 1 }, () => ' UNION ALL SELECT ?, ?, ?, ?, ?').join('');
    return [
      formerRows,
      {
        sql: `${logInsert}
          SELECT v.rev, v.seq, v.k, COALESCE(c.create_rev, v.rev), COALESCE(c.version, 0) + 1, v.lease, v.value, ${ROW_PUT}, COALESCE(c.mod_rev, 0)
          FROM (SELECT ? AS rev, ? AS seq, ? AS k, ? AS lease, ? AS value${puts}) v LEFT JOIN ${p}kv c ON c.k = v.k`,
        params: (all) => all.flatMap((a) => [a.rev, a.seq, a.key, a.lease, a.value]),
      },
      {
        // The revision bounds make it a range read of the log's (rev, seq) key.
        sql: `${copyToCurrent} WHERE rev >= ? AND rev <= ? AND (rev, seq) IN (${placeholderTuples(n, 2)}) ${onKeyConflict}`,
        params: (all) => [Math.min(...all.map((a) => a.rev)), Math.max(...all.map((a) => a.rev)), ...all.flatMap((a) => [a.rev, a.seq])],
      },
    ];
  });
}

/** @param onKeyConflict this database's spelling of ON_KEY_CONFLICT */
export function sqlText(p: string, onKeyConflict = ON_KEY_CONFLICT) {
  const inRange = (b: KeyBound, col = 'k') => (b === 'bounded' ? `${col} >= ? AND ${col} < ?` : `${col} >= ?`);
  const kvColsNoValue = 'k, create_rev, mod_rev, version, lease';
  const currentOne = `SELECT ${KV_COLUMNS} FROM ${p}kv WHERE k = ?`;
  const currentOf = (n: number) => (n === 1 ? currentOne : `SELECT ${KV_COLUMNS} FROM ${p}kv WHERE k IN (${Array(n).fill('?').join(', ')})`);
  const latestPerKey = (b: KeyBound) => `SELECT k, max(rev) AS rev FROM ${p}log WHERE ${inRange(b)} AND rev <= ? GROUP BY k`;
  return {
    headRev: `SELECT max(rev) AS rev FROM ${p}log`,
    metaGet: `SELECT value FROM ${p}meta WHERE name = ?`,
    metaInsert: `INSERT INTO ${p}meta (name, value) VALUES (?, ?)`,
    metaUpdate: `UPDATE ${p}meta SET value = ? WHERE name = ?`,

    // Rows of a range in key order; `limit` is the number of rows fetched (0: all), when
    // non-zero the last parameter.
    currentRows: (b: KeyBound, withValue: boolean, limit: number) =>
      `SELECT ${withValue ? KV_COLUMNS : kvColsNoValue} FROM ${p}kv WHERE ${inRange(b)} ORDER BY k${limit > 0 ? ' LIMIT ?' : ''}`,
    currentCount: (b: KeyBound) => `SELECT count(*) AS n FROM ${p}kv WHERE ${inRange(b)}`,
    currentOne,
    upsertCurrent: `INSERT INTO ${p}kv (${KV_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ${onKeyConflict}`,

    // Head reads in one statement (its own snapshot, no transaction round trips): the rows with
    // the leaf's head revision, so the caller knows whether they are exact at its revision. The
    // range is read in key order up to the limit (no sort). When nothing matches there is no
    // row to carry the head: the caller then reads the head alone (it can only have grown).
    headAndCurrentRows: (b: KeyBound, withValue: boolean, limit: number) =>
      `SELECT (SELECT max(rev) FROM ${p}log) AS head, ${withValue ? KV_COLUMNS : kvColsNoValue}
       FROM ${p}kv WHERE ${inRange(b)} ORDER BY k${limit > 0 ? ' LIMIT ?' : ''}`,
    headAndCurrentCount: (b: KeyBound) => `SELECT (SELECT max(rev) FROM ${p}log) AS head, (SELECT count(*) FROM ${p}kv WHERE ${inRange(b)}) AS n`,

    // The latest row per key at or below a revision, skipping tombstones.
    historicalRows: (b: KeyBound, withValue: boolean, limit: number) =>
      `SELECT l.k AS k, l.create_rev AS create_rev, l.rev AS mod_rev, l.version AS version, l.lease AS lease${withValue ? ', l.value AS value' : ''}
       FROM (${latestPerKey(b)}) m JOIN ${p}log l ON l.k = m.k AND l.rev = m.rev
       WHERE l.kind = ${ROW_PUT} ORDER BY l.k${limit > 0 ? ' LIMIT ?' : ''}`,
    historicalCount: (b: KeyBound) =>
      `SELECT count(*) AS n FROM (${latestPerKey(b)}) m JOIN ${p}log l ON l.k = m.k AND l.rev = m.rev WHERE l.kind = ${ROW_PUT}`,

    insertLog: `INSERT INTO ${p}log (${LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    putUnread: putUnreadStatements(p, onKeyConflict, currentOf),
    deleteCurrent: `DELETE FROM ${p}kv WHERE k = ?`,
    insertGap: `INSERT INTO ${p}log (${LOG_COLUMNS}) VALUES (?, 0, ?, 0, 0, 0, ?, ${ROW_GAP}, 0)`,
    keysOfLease: `SELECT k FROM ${p}kv WHERE lease = ? ORDER BY k`,

    // Events for watch feeds, each with the row it replaced (prev_kv).
    events: `SELECT l.rev AS rev, l.seq AS seq, l.k AS k, l.create_rev AS create_rev, l.version AS version, l.lease AS lease,
       l.value AS value, l.kind AS kind, p.rev AS p_rev, p.create_rev AS p_create_rev, p.version AS p_version,
       p.lease AS p_lease, p.value AS p_value
       FROM ${p}log l LEFT JOIN ${p}log p ON p.k = l.k AND p.rev = l.prev_rev
       WHERE l.rev > ? AND l.rev <= ? AND l.kind <> ${ROW_GAP} ORDER BY l.rev, l.seq LIMIT ?`,

    // Compaction of the revisions [lo, hi): drop rows superseded by a row in the window, then
    // the window's tombstones and gaps. Rows at the compaction revision itself are kept so a
    // watch from that revision still has every event and its prev_kv.
    compactSuperseded: `DELETE FROM ${p}log WHERE (k, rev) IN (SELECT k, prev_rev FROM ${p}log WHERE rev >= ? AND rev < ? AND prev_rev > 0)`,
    compactDead: `DELETE FROM ${p}log WHERE rev >= ? AND rev < ? AND kind <> ${ROW_PUT}`,

    leaseList: `SELECT id, ttl FROM ${p}lease`,
    leaseInsert: `INSERT INTO ${p}lease (id, ttl) VALUES (?, ?)`,
    leaseDelete: `DELETE FROM ${p}lease WHERE id = ?`,
  };
}

export type SqlText = ReturnType<typeof sqlText>;
