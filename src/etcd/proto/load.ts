// Loads etcd's protobuf definitions (written for etcd-tree, wire-compatible with etcd 3.5).
// Decoding options chosen once, for every user: int64 as JS numbers (revisions and our lease IDs
// stay below 2^53), bytes as Buffers, enums as numbers, proto field names kept (snake_case).
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import protobuf from 'protobufjs';

export const protoLoaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [import.meta.dirname],
};

let loaded: grpc.GrpcObject | undefined;

/** The etcdserverpb package: KV, Watch, Lease, Cluster, Maintenance service constructors. */
export function etcdServerPb(): grpc.GrpcObject {
  if (!loaded) {
    const def = protoLoader.loadSync(join(import.meta.dirname, 'rpc.proto'), protoLoaderOptions);
    loaded = grpc.loadPackageDefinition(def).etcdserverpb as grpc.GrpcObject;
  }
  return loaded;
}

export type ServiceName = 'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance';

let tree: grpc.ServiceClientConstructor | undefined;

/** etcd-tree's tree-internal service (tree.proto): what only a parent asks of its subtree. */
export function treeService(): grpc.ServiceClientConstructor {
  if (!tree) {
    const def = protoLoader.loadSync(join(import.meta.dirname, 'tree.proto'), protoLoaderOptions);
    tree = ((grpc.loadPackageDefinition(def).etcdtree as grpc.GrpcObject).v1 as grpc.GrpcObject).Tree as grpc.ServiceClientConstructor;
  }
  return tree;
}

export function serviceDefinition(name: ServiceName): grpc.ServiceDefinition {
  return (etcdServerPb()[name] as grpc.ServiceClientConstructor).service;
}

export function clientConstructor(name: ServiceName): grpc.ServiceClientConstructor {
  return etcdServerPb()[name] as grpc.ServiceClientConstructor;
}

let root: protobuf.Root | undefined;

/**
 * An encoder that writes a plain response object straight to protobuf. proto-loader's default
 * serializer first copies the object through fromObject(); our responses already have the
 * exact field types (numbers, Buffers, nested plain objects), so that copy is pure overhead.
 */
export function encoderFor(typeName: string): (message: object) => Buffer {
  // keepCase: our objects use the proto field names (create_revision), as the decoder does.
  root ??= new protobuf.Root().loadSync(join(import.meta.dirname, 'rpc.proto'), { keepCase: true });
  const type = root.lookupType(typeName);
  return (message) => {
    // A child's answer passed on as it came (pass-through-reply.ts).
    if ((message as { passThrough?: Buffer }).passThrough) return (message as { passThrough: Buffer }).passThrough;
    const bytes = type.encode(message).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/** A decoder of one message type to a plain object (int64 as numbers), for small parts of messages. */
export function decoderFor(typeName: string): (bytes: Buffer) => unknown {
  root ??= new protobuf.Root().loadSync(join(import.meta.dirname, 'rpc.proto'), { keepCase: true });
  const type = root.lookupType(typeName);
  return (bytes) => type.toObject(type.decode(bytes), { longs: Number, defaults: true });
}
