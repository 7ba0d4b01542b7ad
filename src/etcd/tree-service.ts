// etcdtree.v1.Tree (tree.proto): what a parent asks of this node's subtree beyond the etcd API.
import type * as grpc from '@grpc/grpc-js';
import type { Router } from '../router/router.ts';
import type { LeaseHome } from '../router/target.ts';
import { unaryHandler } from './rpc-handler.ts';

export function treeServiceImpl(router: Router, home: () => LeaseHome): grpc.UntypedServiceImplementation {
  return {
    Subtree: unaryHandler('/etcdtree.v1.Tree/Subtree', async (req: { set_generation: number; with_size: boolean }, ctx) => {
      if (req.set_generation > 0) await Promise.all(router.targets().map((t) => t.setGeneration(req.set_generation, ctx)));
      const { maxRevision, generation, dbSize } = await router.subtreeState(ctx, req.with_size);
      return { max_revision: maxRevision, generation, db_size: dbSize };
    }),
    LeaseKeys: unaryHandler('/etcdtree.v1.Tree/LeaseKeys', async (req: { id: number }, ctx) => {
      return { keys: await router.keysOfLease(req.id, ctx) };
    }),
    RevokeLeaseKeys: unaryHandler('/etcdtree.v1.Tree/RevokeLeaseKeys', async (req: { id: number }, ctx) => {
      await router.revokeLeaseKeys(req.id, ctx);
      await home().deleteLease(req.id);
      return {};
    }),
    SaveLease: unaryHandler('/etcdtree.v1.Tree/SaveLease', async (req: { id: number; ttl: number }) => {
      await home().saveLease({ id: req.id, ttl: req.ttl });
      return {};
    }),
    ListLeases: unaryHandler('/etcdtree.v1.Tree/ListLeases', async () => {
      return { leases: await home().listLeases() };
    }),
  };
}
