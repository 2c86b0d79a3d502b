/**
 * Resolving a Snapshot from an Observation (src/core/identity.ts resolveSnapshot with
 * src/core/heartbeat.ts applyHeartbeat): a pure step, no server, no driver.
 */
import { resolveSnapshot } from '../src/core/identity';
import type { Observation } from '../src/core/model';

const identity = { target: { host: 'db.example', port: 6379 } };
const record = { timestampSeconds: 997.5, writerNodeId: 'primary-1' };

function observation(): Observation {
  return {
    datastore: 'test',
    version: '1',
    shards: [
      { role: 'primary', heartbeat: record, lastOperationTimestampSeconds: 990 },
      { id: 's2', role: 'secondary', lagSeconds: 0, heartbeat: record },
      { id: 's3', role: 'unknown', lagSeconds: 7 },
      {
        id: 's4',
        role: 'secondary',
        lagSeconds: 0,
        heartbeat: { timestampSeconds: 1005, writerNodeId: 'p' },
      },
    ],
    performance: {},
  };
}

describe('resolveSnapshot', () => {
  test('heartbeat mode: the record is the heartbeat time on every shard, and the lag of non-primaries', () => {
    const snapshot = resolveSnapshot(observation(), identity, 1000, true);
    const [whole, s2, s3, s4] = snapshot.shards;
    expect(whole).toEqual({
      id: 'default',
      role: 'primary',
      lastOperationTimestampSeconds: 990,
      heartbeatTimestampSeconds: 997.5,
    });
    expect(s2).toEqual({ id: 's2', role: 'secondary', lagSeconds: 2.5, heartbeatTimestampSeconds: 997.5 });
    // No record: the driver's own lag stands.
    expect(s3).toEqual({ id: 's3', role: 'unknown', lagSeconds: 7 });
    // A record from a clock ahead of ours: floored at 0, never negative.
    expect(s4!.lagSeconds).toBe(0);
  });

  test('default mode: the record is dropped; the driver’s own lag stands and no heartbeat time is published', () => {
    const snapshot = resolveSnapshot(observation(), identity, 1000, false);
    for (const shard of snapshot.shards) {
      expect(shard).not.toHaveProperty('heartbeat');
      expect(shard).not.toHaveProperty('heartbeatTimestampSeconds');
    }
    expect(snapshot.shards.map((s) => s.lagSeconds)).toEqual([undefined, 0, 7, 0]);
  });

  test('identity: the whole-dataset shard is named after the cluster id; the observation is not changed', () => {
    const obs = observation();
    const before = JSON.stringify(obs);
    const snapshot = resolveSnapshot(obs, { ...identity, clusterId: 'payments' }, 1000, true);
    expect(snapshot.clusterId).toBe('payments');
    expect(snapshot.shards[0]!.id).toBe('payments');
    expect(snapshot.nodeId).toBe('db.example:6379');
    expect(JSON.stringify(obs)).toBe(before);
  });
});
