// The connections of a parent to one child target: a channel per endpoint (replica), each
// multiplexing every call to it over HTTP/2, with clients for the etcd services and the tree
// service on top. Calls go round-robin over the endpoints that are not failing, carry the
// tree metadata, deadline and cancellation of the request they serve, and fail as EtcdErrors
// with the child's own code and message (a client must not see that a hop happened).
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { EtcdError } from '../etcd/errors.ts';
import type { MvccEvent } from '../store/types.ts';
import { clientConstructor, encoderFor, treeService, type ServiceName } from '../etcd/proto/load.ts';
import { endRpcSpan, startClientSpan } from '../telemetry/tracing.ts';
import type { NodeBackend } from '../topology/backend-spec.ts';
import { childFields, describeLoop, metadataOf, type CallContext } from './call-context.ts';
import { ForwardStream, ForwardUnsupported } from './forward-stream.ts';

type Service = ServiceName | 'Tree';

interface Endpoint {
  url: string;
  channel: grpc.Channel;
  /** One generic client per endpoint: every method is called by path on it. */
  client: grpc.Client;
  /** The etcd unary calls to this endpoint, multiplexed on one stream. */
  forward: ForwardStream;
}

interface MethodCodec {
  path: string;
  /** The CLIENT span's name and attributes: "etcdserverpb.KV/Range". */
  service: string;
  method: string;
  /** etcd calls travel on the Forward stream; the tree service's own calls are unary. */
  forwarded: boolean;
  serialize(message: object): Buffer;
  deserialize(bytes: Buffer): unknown;
}

const keepEncoded = (bytes: Buffer) => bytes;

const codecs = new Map<string, MethodCodec>();

/**
 * Path and codecs of a method. etcd requests are encoded straight from our plain objects (see
 * encoderFor: the loader's own serializer would copy each request through fromObject first).
 */
function codecOf(service: Service, method: string): MethodCodec {
  const id = `${service}/${method}`;
  let codec = codecs.get(id);
  if (!codec) {
    const def = (service === 'Tree' ? treeService() : clientConstructor(service)).service[method];
    if (!def) throw new Error(`no method ${id}`);
    const requestType = (def as unknown as { requestType: { type: { name: string } } }).requestType.type.name;
    codec = {
      path: def.path,
      service: `${service === 'Tree' ? 'etcdtree.v1' : 'etcdserverpb'}.${service}`,
      method,
      forwarded: service !== 'Tree',
      serialize: service === 'Tree' ? (def.requestSerialize as MethodCodec['serialize']) : encoderFor(`etcdserverpb.${requestType}`),
      deserialize: def.responseDeserialize,
    };
    codecs.set(id, codec);
  }
  return codec;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Lists of many keys are far larger than gRPC's 4 MiB default; the child bounds its answers.
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  // A restarted child is found again quickly (the default backoff grows to 2 minutes).
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2000,
  // Pages of lists are hundreds of KiB: HTTP/2's default 64 KiB window would make the child wait
  // for a window update every 64 KiB of each answer.
  'grpc-node.flow_control_window': 16 * 1024 * 1024,
  // The Forward stream stays open while idle: pings find a child that vanished without a word.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  // channelz bookkeeping costs CPU on every call; nothing here reads it.
  'grpc.enable_channelz': 0,
};

function credentialsOf(spec: NodeBackend): grpc.ChannelCredentials {
  if (!spec.endpoints[0].startsWith('https:')) return grpc.credentials.createInsecure();
  const tls = spec.tls;
  const read = (p: string | null) => (p ? readFileSync(p) : null);
  return grpc.credentials.createSsl(read(tls?.ca ?? null), read(tls?.key ?? null), read(tls?.cert ?? null));
}

/**
 * Runs fn with stack-trace capture off. grpc-js captures a stack trace per call for its error
 * messages (ours name the child and the key instead); the capture is a good part of the cost of
 * a forwarded call.
 */
function withoutStackTrace<T>(fn: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The child's error as the client should see it: its code and message, unavailability named. */
export function childError(child: string, err: { code: grpc.status; details?: string; message: string }): EtcdError {
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
      const client = new grpc.Client(target, creds, { channelOverride: channel });
      // A stream that ends under its calls: they fail as on a lost connection.
      const forward = new ForwardStream(client, (status) =>
        childError(this.spec.name, { code: grpc.status.UNAVAILABLE, message: status.code === grpc.status.OK ? 'its forward stream ended' : status.details }),
      );
      return { url, channel, client, forward };
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
  unary<Res>(service: Service, method: string, request: object, ctx: CallContext, readIndex = 0, key?: Buffer): Promise<Res> {
    const codec = codecOf(service, method);
    return this.call(codec, codec.deserialize as (b: Buffer) => Res, request, ctx, readIndex, key);
  }

  /** Like unary, but the answer stays encoded: the parent passes it on as it came. */
  unaryEncoded(service: ServiceName, method: string, request: object, ctx: CallContext, readIndex = 0, key?: Buffer): Promise<Buffer> {
    return this.call(codecOf(service, method), keepEncoded, request, ctx, readIndex, key);
  }

  private call<Res>(codec: MethodCodec, deserialize: (bytes: Buffer) => Res, request: object, ctx: CallContext, readIndex: number, key: Buffer | undefined): Promise<Res> {
    const ep = this.pick();
    const span = startClientSpan(`${codec.service}/${codec.method}`, ctx.span, { 'rpc.system': 'grpc', 'rpc.service': codec.service, 'rpc.method': codec.method, 'etcd_tree.child': this.spec.name, 'server.address': ep.url });
    const fields = childFields(ctx, span, readIndex);
    const sent = codec.forwarded && !ep.forward.unsupported
      ? ep.forward.call(codec.path, codec.serialize(request), fields, ctx.deadline, ctx.onCancel, ctx.identity ?? null).then(deserialize, (err: Error) => {
          if (err instanceof ForwardUnsupported) return this.unaryCall(ep, codec, deserialize, request, fields, ctx);
          throw err instanceof EtcdError ? childError(this.spec.name, err) : err;
        })
      : this.unaryCall(ep, codec, deserialize, request, fields, ctx);
    return sent.then(
      (res) => {
        endRpcSpan(span);
        return res;
      },
      (err: EtcdError) => {
        const mapped = describeLoop(err, this.spec.name, key);
        endRpcSpan(span, mapped);
        throw mapped;
      },
    );
  }

  /** A call of its own (tree-service calls, and children that predate Forward). */
  private unaryCall<Res>(ep: Endpoint, codec: MethodCodec, deserialize: (bytes: Buffer) => Res, request: object, fields: Record<string, string>, ctx: CallContext): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const options = ctx.deadline ? { deadline: ctx.deadline } : {};
      const call = withoutStackTrace(() =>
        ep.client.makeUnaryRequest(codec.path, codec.serialize, deserialize, request, metadataOf(fields), options, (err, res) => {
          stopListening?.();
          if (err) reject(childError(this.spec.name, err));
          else resolve(res as Res);
        }),
      );
      const stopListening = ctx.onCancel?.(() => call.cancel());
    });
  }

  /** A Watch stream to the child (one per child feed). */
  watch(metadata: grpc.Metadata): grpc.ClientDuplexStream<object, WatchResponseMessage> {
    const codec = codecOf('Watch', 'Watch');
    return this.pick().client.makeBidiStreamRequest(codec.path, codec.serialize, codec.deserialize as (b: Buffer) => WatchResponseMessage, metadata);
  }

  close(): void {
    for (const ep of this.endpoints) {
      ep.forward.close();
      ep.client.close();
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
