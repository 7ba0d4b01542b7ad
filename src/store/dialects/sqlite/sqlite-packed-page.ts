// Big pages read as one packed value. better-sqlite3 copies every BLOB it returns into a Buffer
// of its own, made in C++ and tracked by the garbage collector one by one: for a page of 500
// keys with 1 KiB values that is two thirds of the read (3 ms instead of 1). Packed, the page's
// rows come as a single BLOB, each row a short ASCII header ("klen,vlen,create_rev,mod_rev,
// version,lease;") followed by the key and value bytes, and the kvs are views of it. SQLite's
// `||` and group_concat treat BLOBs as text of the same bytes (the database encoding is UTF-8,
// so nothing is converted; NUL bytes are kept: lengths are counted, not searched for).
import type { KeyBound, SqlText } from '../../sql-text.ts';

/**
 * Pages of at least this many rows (with values) are packed. Measured with 1 KiB values: packing
 * costs more below about 10 rows and saves 40% at 33 rows, half at 100.
 */
export const PACKED_PAGE_MIN_ROWS = 32;

/** The row shape the store reads: a current or historical row, and the head where asked for. */
export interface PageRow {
  head?: number;
  k: Buffer | null;
  create_rev: number;
  mod_rev: number;
  version: number;
  lease: number;
  value: Buffer;
}

interface PackedAnswer {
  head?: number | null;
  n: number;
  page: Buffer | null;
}

/** Packed statement text -> the same read unpacked (the same texts are built for every read of their shape). */
const unpackedTexts = new Map<string, string>();

const ROW_HEADER = `CAST(length(k) || ',' || length(value) || ',' || create_rev || ',' || mod_rev || ',' || version || ',' || lease || ';' AS BLOB)`;

/**
 * `select` (rows k, create_rev, mod_rev, version, lease, value in key order, limited) packed into
 * one row; `head`: the SQL of the leaf's head revision, read in the same statement. `unpacked`:
 * the same read as plain rows.
 */
function packed(select: string, head: string | null, unpacked: string): string {
  const text = `SELECT ${head ? `${head} AS head, ` : ''}count(*) AS n,
    CAST(group_concat(${ROW_HEADER} || k || value, '') AS BLOB) AS page FROM (${select})`;
  unpackedTexts.set(text, unpacked);
  return text;
}

/** Whether `sql` was made here: run it with get() and unpack its answer. */
export function isPackedPage(sql: string): boolean {
  return unpackedTexts.has(sql);
}

/**
 * The plain form of a packed statement, for a page too big for one value (SQLITE_TOOBIG: a
 * page of large values beyond SQLite's 1 GB limit): it takes the same parameters.
 */
export function unpackedText(sql: string): string | undefined {
  return unpackedTexts.get(sql);
}

function malformed(what: string): Error {
  return new Error(`a packed SQLite page is malformed: ${what}`);
}

/**
 * The rows of a packed answer. A head statement's empty page answers one row of NULLs carrying
 * the head, as the store's head reads expect. Rows come back in key order: group_concat's order
 * follows its input in practice but is not promised, so it is checked and restored if need be.
 */
export function unpackPage(answer: PackedAnswer | undefined): PageRow[] {
  if (!answer) throw malformed('no answer');
  const withHead = answer.head !== undefined;
  const head = Number(answer.head ?? 0);
  if (answer.n === 0 || answer.page === null) {
    return withHead ? [{ head, k: null, create_rev: 0, mod_rev: 0, version: 0, lease: 0, value: Buffer.alloc(0) }] : [];
  }
  const page = answer.page;
  const rows: PageRow[] = new Array(answer.n);
  let at = 0;
  let ordered = true;
  for (let i = 0; i < answer.n; i++) {
    const end = page.indexOf(0x3b, at); // ';'
    if (end < 0) throw malformed(`row ${i} of ${answer.n} has no header`);
    const [keyLength, valueLength, createRev, modRev, version, lease] = page.toString('latin1', at, end).split(',').map(Number);
    at = end + 1;
    if (!(at + keyLength + valueLength <= page.length)) throw malformed(`row ${i} of ${answer.n} is cut short`);
    const k = page.subarray(at, (at += keyLength));
    const value = page.subarray(at, (at += valueLength));
    if (i > 0 && ordered && Buffer.compare(rows[i - 1].k!, k) >= 0) ordered = false;
    rows[i] = withHead ? { head, k, create_rev: createRev, mod_rev: modRev, version, lease, value } : { k, create_rev: createRev, mod_rev: modRev, version, lease, value };
  }
  if (at !== page.length) throw malformed(`${page.length - at} bytes after the last row`);
  if (!ordered) rows.sort((a, b) => Buffer.compare(a.k!, b.k!));
  return rows;
}

/** The store's statements, with big pages of values packed. */
export function sqliteStatements(base: SqlText, p: string): SqlText {
  const big = (withValue: boolean, limit: number) => withValue && limit >= PACKED_PAGE_MIN_ROWS;
  return {
    ...base,
    currentRows: (b: KeyBound, withValue: boolean, limit: number) => {
      const rows = base.currentRows(b, withValue, limit);
      return big(withValue, limit) ? packed(rows, null, rows) : rows;
    },
    historicalRows: (b: KeyBound, withValue: boolean, limit: number) => {
      const rows = base.historicalRows(b, withValue, limit);
      return big(withValue, limit) ? packed(rows, null, rows) : rows;
    },
    headAndCurrentRows: (b: KeyBound, withValue: boolean, limit: number) => {
      const rows = base.headAndCurrentRows(b, withValue, limit);
      return big(withValue, limit) ? packed(base.currentRows(b, true, limit), `(SELECT max(rev) FROM ${p}log)`, rows) : rows;
    },
  };
}
