// A thin raw gRPC client for etcd's API (our own protos), used to talk to real etcd and to
// etcd-tree alike. Unary calls are promisified; streams are returned as grpc-js duplex streams.
import * as grpc from '@grpc/grpc-js';
import { clientConstructor, type ServiceName } from '../../src/etcd/proto/load.ts';

export type Unary = (req: object, metadata?: grpc.Metadata) => Promise<any>;

export interface EtcdClient {
  endpoint: string;
  kv: { range: Unary; put: Unary; deleteRange: Unary; txn: Unary; compact: Unary };
  lease: {
    grant: Unary; revoke: Unary; timeToLive: Unary; leases: Unary;
    keepAlive(): grpc.ClientDuplexStream<any, any>;
  };
  maintenance: { status: Unary; alarm: Unary; defragment: Unary; hash: Unary };
  cluster: { memberList: Unary };
  watch(metadata?: grpc.Metadata): grpc.ClientDuplexStream<any, any>;
  close(): void;
}

export interface ClientOptions {
  credentials?: grpc.ChannelCredentials;
  /** Extra channel options, e.g. { 'grpc.max_send_message_length': ... }. */
  channelOptions?: grpc.ChannelOptions;
  /** Service constructors with other decoding options (see conformance/exact-client.ts). */
  services?: (name: ServiceName) => grpc.ServiceClientConstructor;
}

function promisify(client: grpc.Client, method: string): Unary {
  return (req, metadata = new grpc.Metadata()) =>
    new Promise((resolve, reject) => {
      (client as any)[method](req, metadata, (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res)));
    });
}

export function connectEtcd(endpoint: string, opts: ClientOptions = {}): EtcdClient {
  const creds = opts.credentials ?? grpc.credentials.createInsecure();
  const channelOptions = { 'grpc.max_send_message_length': 16 * 1024 * 1024, 'grpc.max_receive_message_length': 16 * 1024 * 1024, ...opts.channelOptions };
  const services = opts.services ?? clientConstructor;
  const make = (name: ServiceName) => new (services(name))(endpoint, creds, channelOptions);
  const kv = make('KV');
  const lease = make('Lease');
  const maintenance = make('Maintenance');
  const cluster = make('Cluster');
  const watchClient = make('Watch');
  return {
    endpoint,
    kv: {
      range: promisify(kv, 'Range'),
      put: promisify(kv, 'Put'),
      deleteRange: promisify(kv, 'DeleteRange'),
      txn: promisify(kv, 'Txn'),
      compact: promisify(kv, 'Compact'),
    },
    lease: {
      grant: promisify(lease, 'LeaseGrant'),
      revoke: promisify(lease, 'LeaseRevoke'),
      timeToLive: promisify(lease, 'LeaseTimeToLive'),
      leases: promisify(lease, 'LeaseLeases'),
      keepAlive: () => (lease as any).LeaseKeepAlive(),
    },
    maintenance: {
      status: promisify(maintenance, 'Status'),
      alarm: promisify(maintenance, 'Alarm'),
      defragment: promisify(maintenance, 'Defragment'),
      hash: promisify(maintenance, 'Hash'),
    },
    cluster: { memberList: promisify(cluster, 'MemberList') },
    watch: (metadata = new grpc.Metadata()) => (watchClient as any).Watch(metadata),
    close() {
      for (const c of [kv, lease, maintenance, cluster, watchClient]) c.close();
    },
  };
}
