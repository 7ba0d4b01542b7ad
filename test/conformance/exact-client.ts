// The conformance suite's gRPC client: test/support/etcd-client.ts's interface, but int64 fields
// are decoded EXACTLY. connectEtcd decodes int64 as JS numbers, which is fine for revisions and
// for etcd-tree's lease IDs (< 2^53), but real etcd's lease IDs are ~2^62: as numbers they lose
// their low bits, so Revoke/TimeToLive/Put with them fail, and two leases granted one after the
// other collapse to the same number. Here an int64 that fits a safe integer is a number (so
// scenarios can do revision arithmetic); a larger one stays a decimal string, which requests
// accept as is. Everything else (snake_case names, Buffers, enums as numbers, oneofs, defaults)
// is decoded as connectEtcd does.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { protoLoaderOptions } from '../../src/etcd/proto/load.ts';
import { connectEtcd, type EtcdClient } from '../support/etcd-client.ts';

const protoDir = join(import.meta.dirname, '../../src/etcd/proto');
const INT64 = new Set(['TYPE_INT64', 'TYPE_UINT64', 'TYPE_SINT64', 'TYPE_FIXED64', 'TYPE_SFIXED64']);

interface FieldDescriptor { name: string; type: string; typeName: string }
type Definitions = Record<string, { type?: { field?: FieldDescriptor[] } } & Record<string, any>>;

function exactInt(v: string): number | string {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
}

/** Turns the decimal strings of int64 fields into numbers where that is exact, recursively. */
function makeExact(defs: Definitions, typeName: string, msg: any): any {
  if (msg === null || typeof msg !== 'object') return msg;
  const pkg = typeName.slice(0, typeName.lastIndexOf('.'));
  for (const f of defs[typeName]?.type?.field ?? []) {
    const v = msg[f.name];
    if (v === null || v === undefined) continue;
    if (INT64.has(f.type)) {
      msg[f.name] = Array.isArray(v) ? v.map(exactInt) : exactInt(v);
    } else if (f.type === 'TYPE_MESSAGE') {
      const nested = defs[`${pkg}.${f.typeName}`] ? `${pkg}.${f.typeName}` : f.typeName;
      if (Array.isArray(v)) v.forEach((x) => makeExact(defs, nested, x));
      else makeExact(defs, nested, v);
    }
  }
  return msg;
}

let pkg: grpc.GrpcObject | undefined;
function exactPackage(): grpc.GrpcObject {
  if (pkg) return pkg;
  const defs = protoLoader.loadSync(join(protoDir, 'rpc.proto'), { ...protoLoaderOptions, longs: String }) as Definitions;
  for (const service of ['KV', 'Watch', 'Lease', 'Cluster', 'Maintenance']) {
    for (const method of Object.values(defs[`etcdserverpb.${service}`])) {
      const decode = method.responseDeserialize as (b: Buffer) => any;
      const typeName = `etcdserverpb.${method.responseType.type.name}`;
      method.responseDeserialize = (b: Buffer) => makeExact(defs, typeName, decode(b));
    }
  }
  pkg = grpc.loadPackageDefinition(defs as protoLoader.PackageDefinition).etcdserverpb as grpc.GrpcObject;
  return pkg;
}

export function connectExact(endpoint: string): EtcdClient {
  return connectEtcd(endpoint, { services: (name) => exactPackage()[name] as grpc.ServiceClientConstructor });
}
