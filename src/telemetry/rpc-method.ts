// Splits a gRPC method path into the service and method names that spans and metrics label with.
// Paths come in two spellings: grpc-js's `call.getPath()` ("/etcdserverpb.KV/Range") and the
// span-name form ("etcdserverpb.KV/Range"). Both give the same RpcMethod.

export interface RpcMethod {
  /** "etcdserverpb.KV/Range": the span name. */
  readonly name: string;
  /** "etcdserverpb.KV" */
  readonly service: string;
  /** "Range" */
  readonly method: string;
}

// Bounded by the number of methods the server registers; parsed once per method, not per call.
const parsed = new Map<string, RpcMethod>();

export function rpcMethod(fullMethod: string): RpcMethod {
  let entry = parsed.get(fullMethod);
  if (entry === undefined) {
    const name = fullMethod.startsWith('/') ? fullMethod.slice(1) : fullMethod;
    const slash = name.lastIndexOf('/');
    entry = slash < 0
      ? { name, service: 'unknown', method: name }
      : { name, service: name.slice(0, slash), method: name.slice(slash + 1) };
    parsed.set(fullMethod, entry);
  }
  return entry;
}
