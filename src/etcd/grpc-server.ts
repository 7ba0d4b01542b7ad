// Assembles the gRPC server: etcd's services with the request-size bookkeeping that etcd's
// --max-request-bytes check needs, TLS or plaintext, and tracking of open streams so a
// shutdown can end them cleanly.
import * as grpc from '@grpc/grpc-js';
import { encoderFor, serviceDefinition, treeService, type ServiceName } from './proto/load.ts';
import { forwardHandler, type ForwardableMethod } from './forward-service.ts';
import type { StreamTracker } from './lease-service.ts';
import { recordRequestSize, type UnaryHandler } from './rpc-handler.ts';

/** etcd lets gRPC accept this much above --max-request-bytes, then answers its own error. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | null;
  clientCertAuth: boolean;
}

/**
 * The service definition with a deserializer that remembers each request's encoded size and a
 * serializer that encodes our plain response objects directly.
 */
export function measured(name: ServiceName): grpc.ServiceDefinition {
  const def = serviceDefinition(name);
  const out: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const [method, m] of Object.entries(def)) {
    const deserialize = m.requestDeserialize;
    const responseType = (m as unknown as { responseType: { type: { name: string } } }).responseType.type.name;
    out[method] = {
      ...m,
      responseSerialize: encoderFor(`etcdserverpb.${responseType}`),
      requestDeserialize: (buf: Buffer) => {
        const msg = deserialize(buf);
        if (msg && typeof msg === 'object') recordRequestSize(msg as object, buf.length);
        return msg;
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

export class StreamRegistry {
  private readonly enders = new Set<() => void>();

  readonly track = (end: () => void): (() => void) => {
    this.enders.add(end);
    return () => this.enders.delete(end);
  };

  endAll(): void {
    for (const end of [...this.enders]) end();
  }
}

/** Every unary etcd method whose handler can run without a gRPC call, by method path. */
function forwardableMethods(served: Array<[grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>): Map<string, ForwardableMethod> {
  const methods = new Map<string, ForwardableMethod>();
  for (const [def, impl] of served) {
    for (const [method, m] of Object.entries(def)) {
      const handler = impl[method] as Partial<UnaryHandler<object, object>> | undefined;
      if (m.requestStream || m.responseStream || typeof handler?.invoke !== 'function') continue;
      methods.set(m.path, { decode: m.requestDeserialize as ForwardableMethod['decode'], encode: m.responseSerialize, invoke: handler.invoke });
    }
  }
  return methods;
}

export function serverOptions(maxRequestBytes: number): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': maxRequestBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
    // channelz bookkeeping costs CPU on every call; nothing here reads it.
    'grpc.enable_channelz': 0,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
  };
}

export function createGrpcServer(
  maxRequestBytes: number,
  services: Record<ServiceName, grpc.UntypedServiceImplementation>,
  tree: grpc.UntypedServiceImplementation,
  track: StreamTracker,
): grpc.Server {
  const server = new grpc.Server(serverOptions(maxRequestBytes));
  const served = (Object.entries(services) as Array<[ServiceName, grpc.UntypedServiceImplementation]>).map(
    ([name, impl]): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] => [measured(name), impl],
  );
  for (const [def, impl] of served) server.addService(def, impl);
  server.addService(treeService().service, { ...tree, Forward: forwardHandler(forwardableMethods(served), track) });
  return server;
}

export function serverCredentials(tls: TlsFiles | null): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], tls.clientCertAuth);
}

export function bind(server: grpc.Server, hostPort: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(hostPort, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}
