// etcdserverpb.Cluster: MemberList answers this node as the single member; membership changes
// are Unimplemented (nodes are stateless and join by configuration, not by raft).
import type * as grpc from '@grpc/grpc-js';
import type { Router } from '../router/router.ts';
import { Errors } from './errors.ts';
import type { HeaderFn, NodeIdentity } from './header.ts';
import { unaryHandler } from './rpc-handler.ts';

export function clusterService(router: Router, header: HeaderFn, identity: NodeIdentity): grpc.UntypedServiceImplementation {
  const unimplemented = (method: string) =>
    unaryHandler(`/etcdserverpb.Cluster/${method}`, async () => {
      throw Errors.unimplemented(`${method} (membership is configuration, not raft)`);
    });
  return {
    MemberList: unaryHandler('/etcdserverpb.Cluster/MemberList', async () => ({
      header: header(await router.currentRevision()),
      members: [{ ID: identity.memberId, name: identity.name, peerURLs: [], clientURLs: identity.clientUrls, isLearner: false }],
    })),
    MemberAdd: unimplemented('MemberAdd'),
    MemberRemove: unimplemented('MemberRemove'),
    MemberUpdate: unimplemented('MemberUpdate'),
    MemberPromote: unimplemented('MemberPromote'),
  };
}
