// Redis connections of a node (revision allocator, lessor): fail fast instead of queueing
// forever, reconnect by themselves, and turn every failure into the owner's UNAVAILABLE error
// (never an unhandled error event, never a hang).
import { SpanKind } from '@opentelemetry/api';
import { Redis, type RedisOptions } from 'ioredis';
import { EtcdError } from '../etcd/errors.ts';
import { log } from '../telemetry/logger.ts';
import { inChildSpan, spansRecorded } from '../telemetry/tracing.ts';

/** How the owner of a connection words its errors. */
export interface RedisErrorWords {
  /** What fails while Redis is away, for the log line ("revision calls"). */
  what: string;
  unreachable(reason: string): Error;
  closed(): Error;
  /** A script's own error reply (its first word), or undefined for the generic handling. */
  reply?(word: string, message: string): Error | undefined;
}

export interface RedisConnectionOptions {
  url: string;
  /** How long a call waits for a (re)connection before failing UNAVAILABLE. */
  connectWaitMs: number;
  /** A command without a reply after this long fails (a hung Redis never hangs a caller). */
  commandTimeoutMs: number;
  /** Name shown by CLIENT LIST. */
  name: string;
  /** Subscriber connections queue their SUBSCRIBE until connected; command connections fail fast. */
  subscriber?: boolean;
  /** Let ioredis re-subscribe after a reconnect (off when the owner subscribes itself). */
  autoResubscribe?: boolean;
  errors: RedisErrorWords;
}

/** Reply errors that mean "Redis is there but cannot serve now", not a bug of ours. */
const TRANSIENT_REPLIES = ['LOADING', 'BUSY', 'MASTERDOWN', 'READONLY', 'TRYAGAIN', 'CLUSTERDOWN', 'OOM', 'NOREPLICAS'];

export class RedisConnection {
  readonly client: Redis;
  /** The last connection error, for the UNAVAILABLE message. */
  private lastError = 'not connected yet';
  private readyWait: Promise<void> | null = null;
  /** Since when the connection is not ready (construction time until the first connection). */
  private downSince: number | null = Date.now();
  private warned = false;
  private closed = false;

  constructor(private readonly opts: RedisConnectionOptions) {
    const options: RedisOptions = {
      connectionName: opts.name,
      connectTimeout: opts.connectWaitMs,
      commandTimeout: opts.subscriber ? undefined : opts.commandTimeoutMs,
      // Reconnect forever, quickly: the allocator is useless without Redis.
      retryStrategy: (times) => Math.min(50 * times, 1000),
      // A command caught by a disconnect fails at once; the callers retry (or the deadline fences).
      maxRetriesPerRequest: opts.subscriber ? null : 0,
      autoResendUnfulfilledCommands: false,
      enableOfflineQueue: opts.subscriber === true,
      autoResubscribe: opts.autoResubscribe ?? false,
    };
    this.client = new Redis(opts.url, options);
    this.client.on('error', (err: Error) => {
      this.lastError = shortReason(err);
      if (!this.warned && !this.closed) {
        this.warned = true;
        log.warn({ redis: redactUrl(opts.url), connection: opts.name, err: this.lastError }, `redis unreachable; ${opts.errors.what} fail UNAVAILABLE until it is back`);
      }
    });
    this.client.on('close', () => {
      this.downSince ??= Date.now();
    });
    this.client.on('ready', () => {
      this.downSince = null;
      if (this.warned) log.info({ redis: redactUrl(opts.url), connection: opts.name }, 'redis reachable again');
      this.warned = false;
    });
  }

  get isReady(): boolean {
    return !this.closed && this.client.status === 'ready';
  }

  /**
   * Resolves once the connection is ready. A call waits out a short cut (and the first
   * connection) for up to connectWaitMs counted from when the connection went away; once an
   * outage is older than that, calls fail at once instead of each waiting again.
   */
  async ready(): Promise<void> {
    if (this.closed) throw this.opts.errors.closed();
    if (this.client.status === 'ready') return;
    const left = (this.downSince ?? Date.now()) + this.opts.connectWaitMs - Date.now();
    if (left <= 0) throw this.opts.errors.unreachable(this.lastError);
    this.readyWait ??= new Promise<void>((resolve) => {
      this.client.once('ready', () => {
        this.readyWait = null;
        resolve();
      });
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.readyWait,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(this.opts.errors.unreachable(this.lastError)), left);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a command once the connection is ready; every failure becomes a typed error. */
  async run<T>(fn: (client: Redis) => Promise<T>): Promise<T> {
    await this.ready();
    try {
      return await fn(this.client);
    } catch (err) {
      throw this.translate(err);
    }
  }

  /** Redis errors -> the owner's UNAVAILABLE; other reply errors (a bug, a foreign key) stay errors. */
  translate(err: unknown): Error {
    if (this.closed) return this.opts.errors.closed();
    if (err instanceof EtcdError) return err; // already the owner's answer
    const e = err as { name?: string; message?: string };
    const message = typeof e?.message === 'string' ? e.message : String(err);
    if (e?.name === 'ReplyError') {
      const word = message.split(' ', 1)[0];
      const own = this.opts.errors.reply?.(word, message);
      if (own) return own;
      if (TRANSIENT_REPLIES.includes(word) || word === 'NOSCRIPT') return this.opts.errors.unreachable(message);
      return new Error(`redis: ${message}`);
    }
    return this.opts.errors.unreachable(shortReason(err));
  }

  /** Closes at once: calls in flight fail, no reconnection. */
  close(): void {
    this.closed = true;
    this.client.disconnect();
  }
}

function shortReason(err: unknown): string {
  const e = err as { message?: unknown; errors?: unknown; code?: unknown } | null;
  let message = typeof e?.message === 'string' ? e.message : String(err);
  if (!message && Array.isArray(e?.errors) && e.errors.length > 0) message = String((e.errors[0] as Error)?.message ?? e.errors[0]);
  if (!message && typeof e?.code === 'string') message = e.code;
  const line = message.split('\n')[0];
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/** The URL without credentials, for logs. */
function redactUrl(url: string): string {
  return url.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi, '$1***@');
}

/**
 * Sends one script call (revision and lease scripts) in a CLIENT span named after the script
 * (db.system redis, db.operation the script's name) when a traced request makes it (DESIGN.md 9);
 * with span recording off, just sends it.
 */
export function tracedScriptCall<T>(script: string, send: () => Promise<T>): Promise<T> {
  if (!spansRecorded()) return send();
  return inChildSpan(script, SpanKind.CLIENT, { 'db.system': 'redis', 'db.operation': script }, send);
}
