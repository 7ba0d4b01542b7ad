// The lessor's Redis connections: fail fast instead of queueing, reconnect by themselves, and
// turn every failure into etcd-tree's UNAVAILABLE (never an unhandled error event, never a hang).
import { status as Code } from '@grpc/grpc-js';
import { Redis, type RedisOptions } from 'ioredis';
import { Errors, EtcdError } from '../etcd/errors.ts';
import { log } from '../telemetry/logger.ts';
import { NO_LEASES } from './redis-lease-scripts.ts';

/** UNAVAILABLE because Redis lost the lease records (restarted empty) and they are not restored yet. */
export class LeasesNotLoaded extends EtcdError {
  constructor() {
    super(Code.UNAVAILABLE, 'etcd-tree: leases unavailable: Redis lost the lease records (restarted empty?); they are being restored from the home leaf, retry');
    this.name = 'LeasesNotLoaded';
  }
}

export interface LeaseConnectionOptions {
  url: string;
  /** How long a call waits for a (re)connection before failing UNAVAILABLE. */
  connectWaitMs: number;
  /** A command without a reply after this long fails UNAVAILABLE. */
  commandTimeoutMs: number;
  /** Name shown by CLIENT LIST. */
  name: string;
  /** Subscriber connections queue their SUBSCRIBE until connected; command connections fail fast. */
  subscriber?: boolean;
}

export class LeaseConnection {
  readonly client: Redis;
  private lastError = 'not connected yet';
  private warned = false;
  private closed = false;

  constructor(private readonly opts: LeaseConnectionOptions) {
    const options: RedisOptions = {
      connectionName: opts.name,
      connectTimeout: opts.connectWaitMs,
      commandTimeout: opts.subscriber ? undefined : opts.commandTimeoutMs,
      retryStrategy: (times) => Math.min(50 * times, 1000),
      maxRetriesPerRequest: opts.subscriber ? null : 0,
      autoResendUnfulfilledCommands: false,
      enableOfflineQueue: opts.subscriber === true,
      autoResubscribe: true,
    };
    this.client = new Redis(opts.url, options);
    this.client.on('error', (err: Error) => {
      this.lastError = firstLine(err);
      if (!this.warned && !this.closed) {
        this.warned = true;
        log.warn({ connection: opts.name, err: this.lastError }, 'redis unreachable; lease calls fail UNAVAILABLE until it is back');
      }
    });
    this.client.on('ready', () => {
      if (this.warned) log.info({ connection: opts.name }, 'redis reachable again');
      this.warned = false;
    });
  }

  /** Runs a command once the connection is ready (waiting up to connectWaitMs); failures -> UNAVAILABLE. */
  async run<T>(fn: (client: Redis) => Promise<T>): Promise<T> {
    await this.ready();
    try {
      return await fn(this.client);
    } catch (err) {
      throw this.translate(err);
    }
  }

  close(): void {
    this.closed = true;
    this.client.disconnect();
  }

  private async ready(): Promise<void> {
    if (this.closed) throw Errors.unavailable('the lessor is stopped');
    if (this.client.status === 'ready') return;
    let timer: NodeJS.Timeout | undefined;
    let onReady: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        onReady = resolve;
        this.client.once('ready', onReady);
        timer = setTimeout(() => reject(Errors.unavailable(`leases unavailable: redis unreachable: ${this.lastError}`)), this.opts.connectWaitMs);
      });
    } finally {
      clearTimeout(timer);
      if (onReady) this.client.off('ready', onReady);
    }
  }

  private translate(err: unknown): Error {
    if (err instanceof EtcdError) return err;
    if (this.closed) return Errors.unavailable('the lessor is stopped');
    const e = err as { name?: string };
    if (e?.name === 'ReplyError' && firstLine(err).startsWith(`${NO_LEASES} `)) return new LeasesNotLoaded();
    // A reply error other than "cannot serve now" is a bug of ours: keep it (UNKNOWN, logged).
    if (e?.name === 'ReplyError' && !/^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|OOM|NOREPLICAS|NOSCRIPT)\b/.test(firstLine(err))) {
      return new Error(`redis: ${firstLine(err)}`);
    }
    return Errors.unavailable(`leases unavailable: redis unreachable: ${firstLine(err)}`);
  }
}

function firstLine(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown } | null;
  let message = typeof e?.message === 'string' ? e.message : String(err);
  if (!message && typeof e?.code === 'string') message = e.code;
  const line = message.split('\n')[0];
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}
