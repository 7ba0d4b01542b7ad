// etcdserverpb.Maintenance: Status and Alarm (list) are served; the rest is a clear
// Unimplemented, since a node has no raft log, snapshot or leader to move.
import type * as grpc from '@grpc/grpc-js';
import type { Router } from '../router/router.ts';
import { Errors } from './errors.ts';
import type { HeaderFn, NodeIdentity } from './header.ts';
import { RAFT_TERM } from './header.ts';
import { unaryHandler } from './rpc-handler.ts';

/**
 * The etcd API version reported by Status. kube-apiserver enables consistent reads from its
 * watch cache (RequestProgress) only for >= 3.5.13; our progress responses are exact.
 */
export const ETCD_API_VERSION = '3.5.16';

export function maintenanceService(router: Router, header: HeaderFn, identity: NodeIdentity): grpc.UntypedServiceImplementation {
  const unimplemented = (method: string, what: string) =>
    unaryHandler(`/etcdserverpb.Maintenance/${method}`, async () => {
      throw Errors.unimplemented(what);
    });
  return {
    Status: unaryHandler('/etcdserverpb.Maintenance/Status', async () => {
      const rev = await router.currentRevision();
      const size = await router.sizeBytes();
      return {
        header: header(rev),
        version: ETCD_API_VERSION,
        dbSize: size,
        dbSizeInUse: size,
        leader: identity.memberId,
        raftIndex: rev,
        raftTerm: RAFT_TERM,
        raftAppliedIndex: rev,
        errors: [],
        isLearner: false,
      };
    }),
    Alarm: unaryHandler('/etcdserverpb.Maintenance/Alarm', async (req: { action: number }) => {
      if (req.action !== 0) throw Errors.unimplemented('activating or deactivating alarms');
      return { header: header(await router.currentRevision()), alarms: [] };
    }),
    Defragment: unimplemented('Defragment', 'Defragment (the leaf databases manage their own space)'),
    Hash: unimplemented('Hash', 'Hash'),
    HashKV: unimplemented('HashKV', 'HashKV'),
    Snapshot: (call: grpc.ServerWritableStream<object, object>) => {
      call.destroy(Object.assign(new Error(), { code: 12, details: 'etcd-tree: Snapshot is not implemented (back up the leaf databases instead)' }));
    },
    MoveLeader: unimplemented('MoveLeader', 'MoveLeader (a node has no raft leader)'),
    Downgrade: unimplemented('Downgrade', 'Downgrade'),
  };
}
