// UNAVAILABLE because Redis lost the lease records (restarted empty) and they are not restored yet.
import { status as Code } from '@grpc/grpc-js';
import { EtcdError } from '../etcd/errors.ts';

export class LeasesNotLoaded extends EtcdError {
  constructor() {
    super(Code.UNAVAILABLE, 'etcd-tree: leases unavailable: Redis lost the lease records (restarted empty?); they are being restored from the home leaf, retry');
    this.name = 'LeasesNotLoaded';
  }
}
