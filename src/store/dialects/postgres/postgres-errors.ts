// Which PostgreSQL (and node-postgres) errors mean "the database is down or unreachable", and
// the one database error the store turns into an etcd error (a key too long to index).
import { status as Code } from '@grpc/grpc-js';
import { EtcdError } from '../../../etcd/errors.ts';

/** Socket errors: the server cannot be reached or the connection broke. */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** SQLSTATEs after which the session is gone: admin/crash shutdown, cannot connect now. */
const SESSION_GONE = new Set(['57P01', '57P02', '57P03', '25P03' /* idle_in_transaction_session_timeout */]);

/** node-postgres's own messages for a dead, closed or timed-out connection (no code on these). */
const DRIVER_LOST = /^(Connection terminated|timeout expired|timeout exceeded when trying to connect|Query read timeout|Cannot use a pool after calling end)|is not queryable/;

/** Thrown by the dialect itself when used while not open (closed or never opened). */
export class PostgresClosedError extends Error {
  constructor() {
    super('PostgreSQL leaf connection is closed');
    this.name = 'PostgresClosedError';
  }
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The connection it happened on is unusable: drop it and connect again. */
export function isConnectionLost(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.some(isConnectionLost) || NETWORK.has(codeOf(err) ?? '');
  if (err instanceof PostgresClosedError) return true;
  const code = codeOf(err);
  if (code !== undefined) return NETWORK.has(code) || code.startsWith('08') || SESSION_GONE.has(code);
  return err instanceof Error && DRIVER_LOST.test(err.message);
}

/**
 * A connection that was closed under us (killed, server restarted) rather than one that timed
 * out: worth one immediate retry on a fresh connection; after a timeout it would only wait again.
 */
export function isClosedUnderUs(err: unknown): boolean {
  if (!isConnectionLost(err)) return false;
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : '';
  return code !== 'ETIMEDOUT' && !/timeout/i.test(message);
}

/**
 * The leaf is down or unreachable (the store answers UNAVAILABLE): lost connections, plus the
 * server refusing work for now: too many connections and other resource limits (class 53),
 * a statement or lock timeout (57014, 55P03).
 */
export function isPostgresUnavailable(err: unknown): boolean {
  if (isConnectionLost(err)) return true;
  const code = codeOf(err);
  return code !== undefined && (code.startsWith('53') || code === '57014' || code === '55P03');
}

/**
 * A btree entry is limited to about a third of a page (2704 bytes on 8 KiB pages, after
 * compression): a longer key cannot be indexed. Say so instead of a generic database error.
 */
export function translatePostgresError(err: unknown): unknown {
  if (codeOf(err) === '54000' && err instanceof Error && /index row/.test(err.message)) {
    return new EtcdError(Code.INVALID_ARGUMENT, 'etcd-tree: key is too long for this leaf (PostgreSQL indexes keys of up to about 2700 bytes)');
  }
  return err;
}
