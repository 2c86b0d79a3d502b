/**
 * Source of the committed Grafana dashboards (dashboards/*.json): the panels of the cluster overview
 * and of the node drill-down. The queries come from ./promql.ts (the exporter's series only: no
 * recording rules needed), the JSON model from ./grafana.ts. test/dashboards.test.ts checks that the
 * committed JSON is exactly what this file generates; to regenerate after an edit:
 *
 *   UPDATE_DASHBOARDS=1 npx jest test/dashboards.test.ts
 */
import { dashboard, renderDashboard, type Json, type Mapping, type PanelSpec, type Target } from './grafana';
import {
  BEHIND,
  HEARTBEAT_STOPPED_AFTER_SECONDS,
  IN_SYNC,
  REPLICAS_GONE,
  REPLICAS_REPORTING,
  SHARD,
  SHARD_NODE,
  SHARDS,
  WRITER_STOPPED,
  nodeSel,
  seen,
  sel,
  timeSince,
  withIdentity,
  withNode,
  withShard,
} from './promql';

export { renderDashboard, type Json };

export const DASHBOARD_UIDS = {
  overview: 'datastore-cluster-overview',
  node: 'datastore-node',
} as const;

/**
 * The unit of "behind the shard's newest" per datastore: commit offsets are in each datastore's own
 * unit, so each unit is its own query (and axis), never one number mixing them.
 */
export const BEHIND_UNITS: { datastores: string[]; unit: string; what: string; divide?: number }[] = [
  { datastores: ['redis', 'postgresql'], unit: 'bytes', what: 'bytes (Redis replication stream, PostgreSQL WAL)' },
  {
    datastores: ['mysql', 'zookeeper'],
    unit: 'suffix: transactions',
    what: 'transactions (MySQL/MariaDB GTIDs, ZooKeeper zxids of the newest epoch)',
  },
  { datastores: ['etcd'], unit: 'suffix: revisions', what: 'revisions (etcd)' },
  { datastores: ['kafka', 'nats'], unit: 'suffix: messages', what: 'messages (Kafka, NATS stream sequence)' },
  { datastores: ['rabbitmq'], unit: 'suffix: raft entries', what: 'raft log entries (RabbitMQ quorum queues)' },
  { datastores: ['mongodb'], unit: 's', what: 'seconds of oplog (MongoDB)', divide: 1_000_000 },
];

/** Per-node legend: short node id and the exporter instance. */
const NODE_LEGEND = '{{node}} ({{instance}})';
/** Per shard and node legend. */
const SHARD_NODE_LEGEND = '{{shard}}: {{node}} ({{instance}})';

const UP_MAPPINGS: Mapping[] = [
  { value: 0, text: 'DOWN', color: 'red' },
  { value: 1, text: 'UP', color: 'green' },
];
const UP_THRESHOLDS: [string, number | null][] = [
  ['red', null],
  ['green', 1],
];

/** Replica states (the "State" column of the replicas table). */
const REPLICA_STATE: Mapping[] = [
  { value: 1, text: 'replicating', color: 'green' },
  { value: 3, text: 'CANNOT BE READ', color: 'red' },
  { value: 4, text: 'EXPORTER DOWN (unknown)', color: 'orange' },
  { value: 5, text: 'HEARTBEAT WRITER STOPPED (lag unknown)', color: 'orange' },
];

const DATASTORE_UP =
  "Whether the exporter's last collection from its datastore node succeeded (datastore_up). DOWN: the node is down, unreachable, hung or refuses the exporter's credentials; its model metrics are then absent, so it is listed with its last known identity.";
const EXPORTER_UP =
  'Whether Prometheus can scrape the exporter (up). DOWN: nothing is known about that node, including its role.';
const SNAPSHOT_AGE =
  "Seconds since the exporter's last successful collection, by Prometheus' clock. Normally under two collection intervals; climbing steadily while the datastore is up means a wedged collector or clock skew (DatastoreCollectionStale).";
const COLLECT_DURATION =
  'How long the last collection took (datastore round trips included). Close to --collect.timeout means collections are about to time out.';
const COLLECT_ERRORS =
  'Failed collections per second (datastore down, timeout, error); the exporter log says why.';
const CLIENTS =
  "Clients connected to each node, the exporter's own connection excluded where the datastore allows it. Absent for datastores that cannot tell.";
const LAG = `Seconds each replica is behind its shard's primary, only where the datastore knows it honestly (never a fake 0; primaries have none). Redis knows it only while a replica's link is down, or with --heartbeat; see "Behind the shard's newest" for the others. Not shown while the shard's heartbeat writer is stopped (its heartbeat lag would only count the time since the writer stopped: see "Heartbeat writer"). A replica that cannot be read (datastore down or hung) keeps a line: in heartbeat mode, the time since the newest heartbeat it had, growing (a lower bound).`;
const LAST_OP =
  'Seconds since the last write the shard saw. Where the datastore keeps no last-write time (e.g. Redis) it is the time the exporter first saw the write position advance, so its resolution is one collection interval. A steady climb means no writes: idle, or a primary that accepts none. Absent until a first write is seen.';
const BEHIND_TEXT = `How far each node's commit offset is behind the highest offset any node of the same shard reports, in the datastore's own unit, one query (and axis) per unit: ${BEHIND_UNITS.map((u) => u.what).join('; ')}. ZooKeeper compares within the newest leader epoch (in-sync followers stay at 0 across an election). Works while a replica is connected, where lag in seconds may be unknown.`;
const HEARTBEAT_AGE = `Heartbeat mode (--heartbeat): seconds since the heartbeat each node has was written. All nodes of a shard rising together = the heartbeat writer (the primary's exporter) stopped; one node rising alone = that replica is behind. A node that stopped reporting keeps its line, from its last heartbeat.`;

/** The replica rows: reporting secondaries, and former secondaries that report nothing now. */
const replicaState = withShard(
  withNode(
    withIdentity(
      `(5 * (${REPLICAS_REPORTING} and on (${SHARD}) ${WRITER_STOPPED}) or on (${SHARD_NODE}) ${REPLICAS_REPORTING} ` +
        `or on (${SHARD_NODE}) 3 * (${REPLICAS_GONE} and on (job, instance) (${nodeSel('datastore_up')} == 0)) ` +
        `or on (${SHARD_NODE}) 4 * ${REPLICAS_GONE})`,
      'node_id',
    ),
  ),
);

/** Lag where known (not while the writer is stopped), and a heartbeat replica's growing staleness. */
function lagTargets(legendSuffix = ''): Target[] {
  return [
    {
      expr: withShard(
        withNode(
          withIdentity(
            `(max by (${SHARD_NODE}) (${sel('datastore_shard_replication_lag_seconds')}) unless on (${SHARD}) ${WRITER_STOPPED})`,
            'node_id',
          ),
        ),
      ),
      legend: `${SHARD_NODE_LEGEND}${legendSuffix}`,
    },
    {
      expr: withShard(
        withNode(
          withIdentity(
            `((time() - max by (${SHARD_NODE}) (${seen('datastore_shard_heartbeat_timestamp_seconds')})) ` +
              `and on (${SHARD_NODE}) ${REPLICAS_GONE} and on (job, instance) (${nodeSel('datastore_up')} == 0))`,
            'node_id',
          ),
        ),
      ),
      legend: `${SHARD_NODE_LEGEND} cannot be read: at least`,
    },
  ];
}

function behindTargets(): Target[] {
  return BEHIND_UNITS.map((u) => ({
    expr: withShard(
      withNode(
        withIdentity(
          u.divide ? `(${BEHIND} / ${u.divide})` : BEHIND,
          'node_id',
          `datastore=~"${u.datastores.join('|')}"`,
        ),
      ),
    ),
    legend: `${SHARD_NODE_LEGEND} ${u.datastores.join('/')}`,
    unit: u.unit,
  }));
}

/** Per-second rate of a node-level counter, per node, with the node identity. */
function nodeRate(counter: string): string {
  return withNode(
    `sum by (job, cluster_id, node_id, instance) (${withIdentity(`rate(${nodeSel(counter)}[$__rate_interval])`)})`,
  );
}

/** A node-level gauge, per node, with the node identity. */
function nodeGauge(expr: string, agg = 'max'): string {
  return withNode(`${agg} by (job, cluster_id, node_id, instance) (${withIdentity(expr)})`);
}

const shardRows: PanelSpec[] = [
  {
    kind: 'stat',
    title: 'Primaries per shard',
    description: `Nodes reporting themselves primary, per shard: 1 is healthy, 0 (red) means no primary, 2 or more (red) is a split brain. A shard whose nodes all stopped reporting stays here at 0 for "Keep gone nodes for" ($lookback).`,
    unit: 'none',
    w: 24,
    h: 5,
    thresholds: [
      ['red', null],
      ['green', 1],
      ['red', 2],
    ],
    targets: [
      {
        expr: withShard(
          `sum by (${SHARD}) (${sel('datastore_shard_role', 'role="primary"')}) or on (${SHARD}) 0 * ${SHARDS}`,
        ),
        legend: '{{shard}}',
      },
    ],
  },
  {
    kind: 'table',
    title: 'Primary of each shard',
    description:
      'The node that reports itself primary for each shard now, or NO PRIMARY (also for a shard whose nodes all stopped reporting); a shard listed twice has two. "Since": how long the state has held: for a primary, since the primary role last changed hands in the shard (with no change within $lookback: since the shard was first seen, i.e. at least that long); for NO PRIMARY, since a primary was last reported.',
    unit: 'none',
    w: 24,
    h: 7,
    hide: ['job', 'cluster_id', 'shard_id', 'node_id', '__name__'],
    rename: { shard: 'Shard', node: 'Primary', instance: 'Instance' },
    targets: [
      {
        expr:
          `${withShard(withNode(`max by (${SHARD}, node_id, instance) (${withIdentity(`(${sel('datastore_shard_role', 'role="primary"')} == 1)`, 'node_id')})`))} ` +
          `or on (${SHARD}) ${withShard(`label_replace(0 * ${SHARDS}, "node", "NO PRIMARY", "", "")`)}`,
        column: 'State',
        mappings: [
          { value: 0, text: 'NO PRIMARY', color: 'red' },
          { value: 1, text: 'primary', color: 'green' },
        ],
      },
      {
        expr: withShard(
          `(${timeSince(`changes(${sel('datastore_shard_role', 'role="primary"')}[$__rate_interval]) > 0`, SHARD)} ` +
            `or on (${SHARD}) ${timeSince(sel('datastore_shard_role', 'role="primary"'), SHARD, 'min')}) ` +
            `and on (${SHARD}) (${sel('datastore_shard_role', 'role="primary"')} == 1) ` +
            `or on (${SHARD}) ${timeSince(`${sel('datastore_shard_role', 'role="primary"')} == 1`, SHARD)}`,
        ),
        column: 'Since',
        unit: 's',
      },
    ],
  },
  {
    kind: 'timeseries',
    title: 'Primary role by node',
    description:
      'For each node and shard, 1 while the node reports itself primary and 0 while it is a replica: role changes show as steps. A line that stops is a node (or its exporter) that stopped reporting.',
    unit: 'none',
    w: 8,
    steps: true,
    targets: [
      {
        expr: withShard(
          withNode(
            `max by (${SHARD_NODE}, node_id) (${withIdentity(sel('datastore_shard_role', 'role="primary"'), 'node_id')})`,
          ),
        ),
        legend: SHARD_NODE_LEGEND,
      },
    ],
  },
  {
    kind: 'timeseries',
    title: 'Nodes per shard and role',
    description:
      'How many nodes report each role (primary, secondary, unknown) for each shard. A drop is a node gone; "unknown" is a node whose role the exporter could not map with confidence.',
    unit: 'none',
    w: 8,
    steps: true,
    targets: [
      {
        expr: withShard(`sum by (${SHARD}, role) (${sel('datastore_shard_role')})`),
        legend: '{{shard}} {{role}}',
      },
    ],
  },
  {
    kind: 'stat',
    title: 'Primary role changes in range',
    description:
      "How many times a node gained or lost the primary role during the dashboard's time range, per shard (a failover counts 1 for the promoted node, plus 1 for the old primary if it still reports). 0 is the normal state.",
    unit: 'none',
    w: 8,
    thresholds: [
      ['green', null],
      ['orange', 1],
    ],
    targets: [
      {
        expr: withShard(`sum by (${SHARD}) (changes(${sel('datastore_shard_role', 'role="primary"')}[$__range]))`),
        legend: '{{shard}}',
      },
    ],
  },
];

const replicationRows: PanelSpec[] = [
  {
    kind: 'table',
    title: 'Replicas: how far behind, since when',
    description: `Every replica, with the ones that stopped reporting (kept for $lookback): State (replicating; CANNOT BE READ = exporter up, datastore down or hung; EXPORTER DOWN = nothing known; HEARTBEAT WRITER STOPPED = lag unknown, see "Heartbeat writer"), Lag in seconds where known (for a replica that cannot be read in heartbeat mode: the time since the newest heartbeat it had, growing), and "Out of sync for": time since it was last in sync (lag at most 1 s, or, where only offsets exist, at most one rate interval of writes behind its shard's newest), resolution one interval.`,
    unit: 'none',
    w: 24,
    h: 8,
    hide: ['job', 'cluster_id', 'shard_id', 'node_id', '__name__'],
    rename: { shard: 'Shard', node: 'Replica', instance: 'Instance' },
    targets: [
      { expr: replicaState, column: 'State', mappings: REPLICA_STATE },
      { expr: lagTargets()[0]!.expr + ' or ' + lagTargets()[1]!.expr, column: 'Lag', unit: 's' },
      {
        expr: withShard(
          withNode(
            withIdentity(
              `(${timeSince(IN_SYNC, SHARD_NODE)}) and on (${SHARD_NODE}) (${REPLICAS_REPORTING} or ${REPLICAS_GONE})`,
              'node_id',
            ),
          ),
        ),
        column: 'Out of sync for',
        unit: 's',
      },
    ],
  },
  {
    kind: 'timeseries',
    title: 'Replication lag',
    description: LAG,
    unit: 's',
    w: 12,
    targets: lagTargets(),
  },
  {
    kind: 'timeseries',
    title: "Behind the shard's newest, in the datastore's unit",
    description: BEHIND_TEXT,
    unit: 'short',
    w: 12,
    targets: behindTargets(),
  },
  {
    kind: 'stat',
    title: 'Heartbeat writer',
    description: `Heartbeat mode: seconds since the newest heartbeat any node of the shard has was written (normally under a second or two). WRITER STOPPED from ${HEARTBEAT_STOPPED_AFTER_SECONDS} s: no node has a newer one, so the writer (the primary's exporter, with --heartbeat) is not writing, or the primary accepts no writes; the replicas' heartbeat lag is then hidden (it would only count the time since).`,
    unit: 's',
    w: 8,
    thresholds: [
      ['green', null],
      ['red', HEARTBEAT_STOPPED_AFTER_SECONDS],
    ],
    mappings: [{ from: HEARTBEAT_STOPPED_AFTER_SECONDS, to: null, text: 'WRITER STOPPED', color: 'red' }],
    targets: [
      {
        expr: withShard(
          `time() - max by (${SHARD}) (${sel('datastore_shard_heartbeat_timestamp_seconds')})`,
        ),
        legend: '{{shard}}',
      },
    ],
  },
  {
    kind: 'timeseries',
    title: 'Heartbeat age',
    description: HEARTBEAT_AGE,
    unit: 's',
    w: 8,
    targets: [
      {
        expr: withShard(
          withNode(
            withIdentity(
              `(time() - max by (${SHARD_NODE}) (${seen('datastore_shard_heartbeat_timestamp_seconds')}))`,
              'node_id',
            ),
          ),
        ),
        legend: SHARD_NODE_LEGEND,
      },
    ],
  },
  {
    kind: 'timeseries',
    title: 'Time since last operation, per shard',
    description: LAST_OP,
    unit: 's',
    w: 8,
    targets: [
      {
        expr: withShard(
          `time() - max by (${SHARD}) (${sel('datastore_shard_last_operation_timestamp_seconds')})`,
        ),
        legend: '{{shard}}',
      },
    ],
  },
];

function trafficRow(w: number, perNode = true): PanelSpec[] {
  return [
    {
      kind: 'timeseries',
      title: 'Clients connected',
      description: CLIENTS,
      unit: 'short',
      w,
      targets: [{ expr: nodeGauge(nodeSel('datastore_clients_connected')), legend: NODE_LEGEND }],
    },
    ...(perNode
      ? [
          {
            kind: 'timeseries' as const,
            title: 'Reads per second',
            description:
              'Read operations per second on each node, as the datastore counts them (defined per datastore in its docs page; e.g. Redis: calls of read-only commands).',
            unit: 'ops',
            w,
            targets: [{ expr: nodeRate('datastore_reads_total'), legend: NODE_LEGEND }],
          },
          {
            kind: 'timeseries' as const,
            title: 'Writes per second',
            description:
              'Write operations per second on each node, as the datastore counts them (on replicas this includes replicated writes where the datastore counts them).',
            unit: 'ops',
            w,
            targets: [{ expr: nodeRate('datastore_writes_total'), legend: NODE_LEGEND }],
          },
        ]
      : [
          {
            kind: 'timeseries' as const,
            title: 'Operations per second',
            description:
              'Reads and writes per second as the datastore counts them (defined per datastore in its docs page).',
            unit: 'ops',
            w,
            targets: [
              { expr: nodeRate('datastore_reads_total'), legend: `${NODE_LEGEND} reads` },
              { expr: nodeRate('datastore_writes_total'), legend: `${NODE_LEGEND} writes` },
            ],
          },
        ]),
  ];
}

function healthPanels(w: number, h?: number): PanelSpec[] {
  return [
    {
      kind: 'stat',
      title: 'Datastore reachable',
      description: DATASTORE_UP,
      unit: 'none',
      w,
      h,
      thresholds: UP_THRESHOLDS,
      mappings: UP_MAPPINGS,
      targets: [{ expr: nodeGauge(nodeSel('datastore_up'), 'min'), legend: NODE_LEGEND }],
    },
    {
      kind: 'stat',
      title: 'Exporter scraped',
      description: EXPORTER_UP,
      unit: 'none',
      w,
      h,
      thresholds: UP_THRESHOLDS,
      mappings: UP_MAPPINGS,
      targets: [{ expr: nodeGauge(nodeSel('up'), 'min'), legend: NODE_LEGEND }],
    },
  ];
}

function exporterPanels(w: number): PanelSpec[] {
  return [
    {
      kind: 'timeseries',
      title: 'Snapshot age',
      description: SNAPSHOT_AGE,
      unit: 's',
      w,
      targets: [
        {
          expr: nodeGauge(`(time() - (${nodeSel('datastore_exporter_last_collect_success_timestamp_seconds')} > 0))`),
          legend: NODE_LEGEND,
        },
      ],
    },
    {
      kind: 'timeseries',
      title: 'Collection duration',
      description: COLLECT_DURATION,
      unit: 's',
      w,
      targets: [{ expr: nodeGauge(nodeSel('datastore_exporter_collect_duration_seconds')), legend: NODE_LEGEND }],
    },
    {
      kind: 'timeseries',
      title: 'Collection errors per second',
      description: COLLECT_ERRORS,
      unit: 'cps',
      w,
      targets: [{ expr: nodeRate('datastore_exporter_collect_errors_total'), legend: NODE_LEGEND }],
    },
  ];
}

function overview(): Json {
  return dashboard(
    DASHBOARD_UIDS.overview,
    'Datastore / Cluster overview',
    'Which shard has no primary, which replica is behind, by how much and since when; heartbeats; clients and read/write rates per node; exporter health. Made for datastore-exporter (any datastore it supports); needs no recording rules.',
    [
      { row: 'Shards: who is primary', panels: shardRows },
      { row: 'Replication: who is behind, by how much, since when', panels: replicationRows },
      { row: 'Traffic', panels: trafficRow(8) },
      {
        row: 'Exporter health',
        panels: [
          ...healthPanels(6),
          ...exporterPanels(6).slice(0, 2),
          exporterPanels(8)[2]!,
          {
            kind: 'table',
            title: 'Datastore versions',
            description: 'Datastore and version of each node (datastore_version_info): check a rolling upgrade.',
            unit: 'none',
            w: 8,
            hide: ['Value', 'job', 'cluster_id', 'node_id'],
            rename: { node: 'Node', instance: 'Instance', datastore: 'Datastore', version: 'Version' },
            targets: [
              {
                expr: withNode(
                  `max by (job, cluster_id, node_id, instance, datastore, version) (${withIdentity(
                    nodeSel('datastore_version_info'),
                  )})`,
                ),
              },
            ],
          },
          {
            kind: 'table',
            title: 'Exporter versions',
            description: 'Exporter and Node.js version of each exporter (datastore_exporter_build_info).',
            unit: 'none',
            w: 8,
            hide: ['Value', 'job', 'cluster_id', 'node_id'],
            rename: { node: 'Node', instance: 'Instance', version: 'Exporter', nodejs_version: 'Node.js' },
            targets: [
              {
                expr: withNode(
                  `max by (job, cluster_id, node_id, instance, version, nodejs_version) (${withIdentity(
                    nodeSel('datastore_exporter_build_info'),
                  )})`,
                ),
              },
            ],
          },
        ],
      },
    ],
  );
}

function node(): Json {
  return dashboard(
    DASHBOARD_UIDS.node,
    'Datastore / Node',
    "One datastore node (pick it with Instance): reachability, identity, its role and lag in each shard, heartbeat, last operation, commit offset, clients, reads/writes and the exporter's own health. Needs no recording rules.",
    [
      {
        row: 'Node',
        panels: [
          ...healthPanels(6, 6),
          {
            kind: 'table',
            title: 'Identity',
            description:
              'Datastore, version, node id and cluster id of the node (datastore_version_info, datastore_node_info), kept while the datastore is down (for $lookback).',
            unit: 'none',
            w: 12,
            h: 6,
            hide: ['Value', 'job'],
            targets: [
              {
                expr: `max by (job, datastore, version, cluster_id, node_id, instance) (${withIdentity(
                  `last_over_time(${nodeSel('datastore_version_info')}[$lookback])`,
                  'datastore, cluster_id, node_id',
                )})`,
              },
            ],
          },
          {
            kind: 'table',
            title: 'Shards and roles',
            description:
              'Every shard the node holds and its role there now (primary, secondary or unknown); while the node does not report, its last known roles (for $lookback).',
            unit: 'none',
            w: 24,
            h: 6,
            hide: ['Value', 'job', 'cluster_id', 'shard_id', 'node_id'],
            rename: { shard: 'Shard', node: 'Node', instance: 'Instance', role: 'Role' },
            targets: [
              {
                expr: withShard(
                  withNode(
                    `max by (${SHARD_NODE}, role, node_id) (${withIdentity(`(${seen('datastore_shard_role')} == 1)`, 'node_id')})`,
                  ),
                ),
              },
            ],
          },
        ],
      },
      {
        row: 'Replication',
        panels: [
          {
            kind: 'timeseries',
            title: 'Primary role by shard',
            description: '1 while the node is primary of the shard, 0 while it is not: role changes show as steps.',
            unit: 'none',
            w: 12,
            steps: true,
            targets: [
              {
                expr: withShard(
                  withNode(
                    `max by (${SHARD_NODE}, node_id) (${withIdentity(sel('datastore_shard_role', 'role="primary"'), 'node_id')})`,
                  ),
                ),
                legend: SHARD_NODE_LEGEND,
              },
            ],
          },
          { kind: 'timeseries', title: 'Replication lag', description: LAG, unit: 's', w: 12, targets: lagTargets() },
          {
            kind: 'timeseries',
            title: 'Heartbeat age',
            description: HEARTBEAT_AGE,
            unit: 's',
            w: 8,
            targets: replicationRows.find((p) => p.title === 'Heartbeat age')!.targets,
          },
          {
            kind: 'timeseries',
            title: 'Time since last operation',
            description: LAST_OP,
            unit: 's',
            w: 8,
            targets: [
              {
                expr: withShard(
                  withNode(
                    `time() - max by (${SHARD_NODE}, node_id) (${withIdentity(
                      sel('datastore_shard_last_operation_timestamp_seconds'),
                      'node_id',
                    )})`,
                  ),
                ),
                legend: SHARD_NODE_LEGEND,
              },
            ],
          },
          {
            kind: 'timeseries',
            title: "Behind the shard's newest",
            description: BEHIND_TEXT,
            unit: 'short',
            w: 8,
            targets: behindTargets(),
          },
          {
            kind: 'timeseries',
            title: 'Commit offset movement',
            description:
              "How fast the commit offset moves forward, in the datastore's unit per second (bytes for Redis and PostgreSQL, transactions for MySQL and ZooKeeper, revisions for etcd...). rate(), not deriv(): a position that starts over (a new ZooKeeper epoch, a restarted Redis primary without persistence) counts as a reset, not as a huge negative movement. Flat on a replica while its primary moves = the replica is not applying.",
            unit: 'short',
            w: 24,
            targets: BEHIND_UNITS.filter((u) => !u.divide).map((u) => ({
              expr: withShard(
                withNode(
                  `max by (${SHARD_NODE}, node_id) (${withIdentity(
                    `rate(${sel('datastore_shard_commit_offset')}[$__rate_interval])`,
                    'node_id',
                    `datastore=~"${u.datastores.join('|')}"`,
                  )})`,
                ),
              ),
              legend: `${SHARD_NODE_LEGEND} ${u.datastores.join('/')}`,
              unit: `${u.unit}/s`.replace('bytes/s', 'Bps').replace(/^suffix: (.+)\/s$/, 'suffix: $1/s'),
            })),
          },
        ],
      },
      { row: 'Traffic', panels: trafficRow(12, false) },
      { row: 'Exporter', panels: exporterPanels(8) },
    ],
  );
}

/** File name (under dashboards/) -> dashboard JSON model. */
export function buildDashboards(): Record<string, Json> {
  return {
    'datastore-cluster-overview.json': overview(),
    'datastore-node.json': node(),
  };
}
