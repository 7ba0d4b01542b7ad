// Maintenance.Status and Cluster.MemberList: the fields a client can rely on, compared as
// properties (sizes, IDs and indexes differ between any two servers), plus the version that
// makes kube-apiserver use progress requests for consistent lists (>= 3.5.13).
import { describeConformance } from './harness.ts';
import { b } from './keys.ts';

/** a >= b for dotted versions like "3.5.16" (pre-release suffixes ignored). */
function versionAtLeast(a: string, min: string): boolean {
  const parse = (v: string) => v.split(/[.-]/).slice(0, 3).map((n) => Number.parseInt(n, 10) || 0);
  const [x, y] = [parse(a), parse(min)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] > y[i];
  return true;
}

/** What a Status answer promises, independent of which server answered. */
const statusShape = (r: any) => ({
  header: r.header,
  versionIsDotted: /^\d+\.\d+\.\d+/.test(r.version),
  dbSizePositive: r.dbSize > 0,
  dbSizeInUseWithinDbSize: r.dbSizeInUse > 0 && r.dbSizeInUse <= r.dbSize,
  leaderIsThisMember: String(r.leader) === String(r.header.member_id) && String(r.leader) !== '0',
  raftIndexPositive: r.raftIndex > 0,
  raftAppliedIndexPositive: r.raftAppliedIndex > 0,
  raftTermPositive: r.raftTerm > 0,
  errors: r.errors,
  isLearner: r.isLearner,
});

describeConformance('maintenance', {
  'Status version is at least 3.5.13 (kube-apiserver then uses progress requests)': async (t) => {
    await t.step('status', () => t.client.maintenance.status({}), (r) => ({ versionAtLeast_3_5_13: versionAtLeast(r.version, '3.5.13') }));
  },

  'Status fields': async (t) => {
    await t.step('status', () => t.client.maintenance.status({}), statusShape);
    await t.step('put a', () => t.client.kv.put({ key: t.key('a'), value: b('1') }));
    await t.step('status after a write', () => t.client.maintenance.status({}), statusShape);
  },

  'MemberList: one member whose clientURLs is the endpoint': async (t) => {
    const shape = (r: any) => ({
      header: r.header,
      members: r.members.map((m: any) => ({
        idIsHeaderMemberId: String(m.ID) === String(r.header.member_id) && String(m.ID) !== '0',
        hasName: m.name !== '',
        clientURLs: m.clientURLs.map((u: string) => (u === `http://${t.client.endpoint}` ? 'http://<endpoint>' : u)),
        isLearner: m.isLearner,
      })),
    });
    await t.step('member list', () => t.client.cluster.memberList({}), shape);
    await t.step('member list, linearizable', () => t.client.cluster.memberList({ linearizable: true }), shape);
  },

  'Alarm list is empty': async (t) => {
    await t.step('alarm GET', () => t.client.maintenance.alarm({ action: 0 }));
  },
});
