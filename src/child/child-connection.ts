// The connections of a parent to one child target: a channel per endpoint (replica), each
// multiplexing every call to it over HTTP/2, with clients for the etcd services and the tree
// service on top. Calls go round-robin over the endpoints that are not failing, carry the
// tree metadata, deadline and cancellation of the request they serve, and fail as EtcdErrors
// with the child's own code and message (a client must not see that a hop happened).
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { EtcdError } from '../etcd/errors.ts';
import type { MvccEvent } from '../store/types.ts';
import { clientConstructor, treeService, type ServiceName } from '../etcd/proto/load.ts';
import { endRpcSpan, startClientSpan } from '../telemetry/tracing.ts';
import type { NodeBackend } from '../topology/backend-spec.ts';
import { childMetadata, type CallContext } from './call-context.ts';

type Service = ServiceName | 'Tree';
type UnaryMethod = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;

interface Endpoint {
  url: string;
  channel: grpc.Channel;
  clients: Record<Service, grpc.Client>;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Lists of many keys are far larger than gRPC's 4 MiB default; the child bounds its answers.
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  // A restarted child is found again quickly (the default backoff grows to 2 minutes).
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2000,
};

function credentialsOf(spec: NodeBackend): grpc.ChannelCredentials {
  if (!spec.endpoints[0].startsWith('https:')) return grpc.credentials.createInsecure();
  const tls = spec.tls;
  const read = (p: string | null) => (p ? readFileSync(p) : null);
  return grpc.credentials.createSsl(read(tls?.ca ?? null), read(tls?.key ?? null), read(tls?.cert ?? null));
}

/** The child's error as the client should see it: its code and message, unavailability named. */
export function childError(child: string, err: grpc.ServiceError): EtcdError {
  const details = err.details || err.message;
  if (err.code === grpc.status.UNAVAILABLE && !/^(etcdserver|etcd-tree):/.test(details)) {
    return new EtcdError(grpc.status.UNAVAILABLE, `etcd-tree: child node ${child} unavailable: ${details}`);
  }
  if (err.code === grpc.status.CANCELLED) return new EtcdError(grpc.status.CANCELLED, details);
  return new EtcdError(err.code, details);
}

export class ChildConnection {
  private readonly endpoints: Endpoint[];
  private next = 0;

  constructor(readonly spec: NodeBackend) {
    const creds = credentialsOf(spec);
    this.endpoints = spec.endpoints.map((url) => {
      const target = new URL(url).host;
      const channel = new grpc.Channel(target, creds, CHANNEL_OPTIONS);
      const make = (ctor: grpc.ServiceClientConstructor) => new ctor(target, creds, { channelOverride: channel });
      const clients = {
        KV: make(clientConstructor('KV')),
        Watch: make(clientConstructor('Watch')),
        Lease: make(clientConstructor('Lease')),
        Maintenance: make(clientConstructor('Maintenance')),
        Cluster: make(clientConstructor('Cluster')),
        Tree: make(treeService()),
      };
      return { url, channel, clients };
    });
  }

  get name(): string {
    return this.spec.name;
  }

  /** Round-robin over the endpoints, skipping those whose connection is failing while others are not. */
  private pick(): Endpoint {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const ep = this.endpoints[(this.next + i) % n];
      if (ep.channel.getConnectivityState(true) !== grpc.connectivityState.TRANSIENT_FAILURE) {
        this.next = (this.next + i + 1) % n;
        return ep;
      }
    }
    return this.endpoints[this.next++ % n];
  }

  /** One unary call to the child, inside a CLIENT span, with the request's metadata, deadline and cancellation. */
  unary<Res>(service: Service, method: string, request: object, ctx: CallContext, readIndex = 0): Promise<Res> {
    const ep = this.pick();
    const span = startClientSpan(`${service}/${method}`, ctx.span, { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method, 'etcd_tree.child': this.spec.name, 'server.address': ep.url });
    const metadata = childMetadata(ctx, span, readIndex);
    return new Promise<Res>((resolve, reject) => {
      const fn = (ep.clients[service] as unknown as Record<string, UnaryMethod>)[method];
      const onAbort = () => call.cancel();
      const call = fn.call(ep.clients[service], request, metadata, ctx.deadline ? { deadline: ctx.deadline } : {}, (err, res) => {
        ctx.signal?.removeEventListener('abort', onAbort);
        if (err) {
          const mapped = childError(this.spec.name, err);
          endRpcSpan(span, mapped);
          reject(mapped);
        } else {
          endRpcSpan(span);
          resolve(res as Res);
        }
      });
      ctx.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A Watch stream to the child (one per child feed). */
  watch(metadata: grpc.Metadata): grpc.ClientDuplexStream<object, WatchResponseMessage> {
    const client = this.pick().clients.Watch as unknown as { Watch(md: grpc.Metadata): grpc.ClientDuplexStream<object, WatchResponseMessage> };
    return client.Watch(metadata);
  }

  close(): void {
    for (const ep of this.endpoints) {
      for (const c of Object.values(ep.clients)) c.close();
      ep.channel.close();
    }
  }
}

/** A WatchResponse as the proto loader decodes it. */
export interface WatchResponseMessage {
  header: { revision: number } | null;
  watch_id: number;
  created: boolean;
  canceled: boolean;
  compact_revision: number;
  cancel_reason: string;
  fragment: boolean;
  events: MvccEvent[];
}
