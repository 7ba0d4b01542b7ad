// The load generator's view of a server: a few raw grpc-js KV channels plus one Watch channel.
// Kept as thin as grpc-js allows (no retries, no per-call metadata, no wrappers), so the
// client's own CPU stays small next to the server's: both share this machine's cores.
import * as grpc from '@grpc/grpc-js';
import { clientConstructor } from '../../src/etcd/proto/load.ts';

export interface KvChannel {
  put(key: Buffer, value: Buffer): Promise<PutResponse>;
  range(request: RangeRequest): Promise<RangeResponse>;
}

export interface RangeRequest {
  key: Buffer;
  range_end?: Buffer;
  limit?: number;
  revision?: number;
  count_only?: boolean;
  keys_only?: boolean;
}

export interface ResponseHeader { revision: number }
export interface KeyValue { key: Buffer; value: Buffer; mod_revision: number }
export interface PutResponse { header: ResponseHeader }
export interface RangeResponse { header: ResponseHeader; kvs: KeyValue[]; more: boolean; count: number }

export interface BenchClient {
  endpoint: string;
  /** The KV channel a worker uses: workers are spread round-robin over the connections. */
  kv(worker: number): KvChannel;
  /** Opens a Watch stream on its own connection. */
  watch(): grpc.ClientDuplexStream<object, WatchResponse>;
  close(): void;
}

export interface WatchResponse {
  header: ResponseHeader;
  watch_id: number;
  created: boolean;
  canceled: boolean;
  cancel_reason: string;
  events: Array<{ type: number; kv: KeyValue }>;
}

const MiB = 1024 * 1024;

function channelOptions(connection: number): grpc.ChannelOptions {
  return {
    // Without a local subchannel pool, grpc-js shares one TCP connection among all channels
    // to the same address; the distinct option value also keeps channels from being merged.
    'grpc.use_local_subchannel_pool': 1,
    'grpc.primary_user_agent': `etcd-tree-bench/${connection}`,
    'grpc.max_receive_message_length': 64 * MiB,
    'grpc.max_send_message_length': 64 * MiB,
  };
}

function kvChannel(client: grpc.Client): KvChannel {
  const raw = client as unknown as Record<string, (req: object, cb: (err: grpc.ServiceError | null, res: any) => void) => void>;
  // grpc-js captures a stack trace per call (for its error messages): a lean load generator skips it.
  const unary = <T>(method: string, request: object) =>
    new Promise<T>((resolve, reject) => {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        raw[method](request, (err, res) => (err ? reject(err) : resolve(res)));
      } finally {
        Error.stackTraceLimit = limit;
      }
    });
  return {
    put: (key, value) => unary<PutResponse>('Put', { key, value }),
    range: (request) => unary<RangeResponse>('Range', request),
  };
}

export function connectBenchClient(endpoint: string, connections: number): BenchClient {
  const credentials = grpc.credentials.createInsecure();
  const KV = clientConstructor('KV');
  const Watch = clientConstructor('Watch');
  // Several endpoints (a multi-node target, "a:1,b:2"): connections are spread over them.
  const endpoints = endpoint.split(',');
  const kvClients = Array.from({ length: connections }, (_, i) => new KV(endpoints[i % endpoints.length], credentials, channelOptions(i)));
  const kvChannels = kvClients.map(kvChannel);
  const watchClient = new Watch(endpoints[0], credentials, channelOptions(connections));
  return {
    endpoint,
    kv: (worker) => kvChannels[worker % kvChannels.length],
    watch: () => (watchClient as any).Watch(),
    close() {
      for (const client of [...kvClients, watchClient]) client.close();
    },
  };
}
