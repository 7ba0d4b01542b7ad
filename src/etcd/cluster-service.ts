// etcdserverpb.Cluster: MemberList answers this node as the single member; membership changes
// are Unimplemented (nodes are stateless and join by configuration, not by raft).
import type * as grpc from '@grpc/grpc-js';
import { Errors } from './errors.ts';
import type { HeaderFn, NodeIdentity } from './header.ts';
import { unaryHandler } from './rpc-handler.ts';

export function clusterService(header: HeaderFn, identity: NodeIdentity): grpc.UntypedServiceImplementation {
  const unimplemented = (method: string) =>
    unaryHandler(`/etcdserverpb.Cluster/${method}`, async () => {
      throw Errors.unimplemented(`${method} (membership is configuration, not raft)`);
    });
  return {
    // etcd answers MemberList from its membership store, with no revision in the header.
    MemberList: unaryHandler('/etcdserverpb.Cluster/MemberList', async () => ({
      header: header(0),
      members: [{ ID: identity.memberId, name: identity.name, peerURLs: [], clientURLs: identity.clientUrls, isLearner: false }],
    })),
    MemberAdd: unimplemented('MemberAdd'),
    MemberRemove: unimplemented('MemberRemove'),
    MemberUpdate: unimplemented('MemberUpdate'),
    MemberPromote: unimplemented('MemberPromote'),
  };
}
