// Which MySQL/MariaDB (and mysql2) errors mean "the database is down or unreachable", and the
// one database error the store turns into an etcd error (a key too long for the key column).
import { status as Code } from '@grpc/grpc-js';
import { EtcdError } from '../../../etcd/errors.ts';
import { MYSQL_MAX_KEY_BYTES } from './mysql-schema.ts';

/** Socket and driver codes: the server cannot be reached or the connection broke. */
const LOST_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'PROTOCOL_ENQUEUE_AFTER_QUIT', 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
]);

/** Server errors after which the session is gone (by errno: MariaDB and MySQL number some apart). */
const LOST_ERRNOS = new Set([
  1053, // ER_SERVER_SHUTDOWN
  1152, // ER_ABORTING_CONNECTION
  1184, // ER_NEW_ABORTING_CONNECTION
  1927, // ER_CONNECTION_KILLED (MariaDB)
  3169, // ER_SESSION_WAS_KILLED (MySQL)
  4031, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL)
]);

/** Server errors meaning "not now": too many connections, timeouts, the server going down. */
const BUSY_ERRNOS = new Set([
  1040, // ER_CON_COUNT_ERROR
  1203, // ER_TOO_MANY_USER_CONNECTIONS
  1205, // ER_LOCK_WAIT_TIMEOUT: another node held the leaf's write lock too long
  1317, // ER_QUERY_INTERRUPTED
  1969, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
  3024, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
  1129, // ER_HOST_IS_BLOCKED
]);

/** Fatal but about the configuration, not the server's health: access denied, unknown database. */
const CONFIG_ERRNOS = new Set([1044, 1045, 1049, 1698]);

/** mysql2's own messages for a closed or dead connection (no code on these). */
const DRIVER_LOST = /closed state|Pool is closed|Connection lost/;

/** Thrown by the dialect itself when used while not open (closed or never opened). */
export class MysqlClosedError extends Error {
  constructor() {
    super('MySQL leaf connection is closed');
    this.name = 'MysqlClosedError';
  }
}

interface DriverError {
  code?: unknown;
  errno?: unknown;
  fatal?: unknown;
  message?: unknown;
}

/** The connection it happened on is unusable: drop it and connect again. */
export function isConnectionLost(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.some(isConnectionLost) || LOST_CODES.has(String((err as DriverError).code));
  if (err instanceof MysqlClosedError) return true;
  const e = (err ?? {}) as DriverError;
  if (typeof e.errno === 'number' && CONFIG_ERRNOS.has(e.errno)) return false;
  if (typeof e.code === 'string' && LOST_CODES.has(e.code)) return true;
  if (typeof e.errno === 'number' && LOST_ERRNOS.has(e.errno)) return true;
  if (e.fatal === true) return true;
  return typeof e.message === 'string' && DRIVER_LOST.test(e.message);
}

/**
 * A connection that was closed under us (killed, server restarted) rather than one that timed
 * out: worth one immediate retry on a fresh connection; after a timeout it would only wait again.
 */
export function isClosedUnderUs(err: unknown): boolean {
  const code = (err as DriverError | null)?.code;
  return isConnectionLost(err) && code !== 'ETIMEDOUT' && code !== 'PROTOCOL_SEQUENCE_TIMEOUT';
}

export function isMysqlUnavailable(err: unknown): boolean {
  if (isConnectionLost(err)) return true;
  const errno = (err as DriverError | null)?.errno;
  return typeof errno === 'number' && BUSY_ERRNOS.has(errno);
}

/** ER_DATA_TOO_LONG on the key column: say what the limit is. */
export function translateMysqlError(err: unknown): unknown {
  const e = err as DriverError | null;
  if (e?.errno === 1406 && typeof e.message === 'string' && /column 'k'/.test(e.message)) {
    return new EtcdError(Code.INVALID_ARGUMENT, `etcd-tree: key is too long for this leaf (MySQL holds keys of up to ${MYSQL_MAX_KEY_BYTES} bytes)`);
  }
  return err;
}
