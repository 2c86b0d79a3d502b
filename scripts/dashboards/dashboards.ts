/**
 * Source of the committed Grafana dashboards (dashboards/*.json). Written in TypeScript so every panel
 * gets the same conventions for free: the templated datasource, job/cluster_id/instance matchers on
 * every selector, $__rate_interval in rates, a unit and a description. test/dashboards.test.ts checks
 * that the committed JSON is exactly what this file generates; to regenerate after an edit:
 *
 *   UPDATE_DASHBOARDS=1 npx jest test/dashboards.test.ts
 *
 * No dependency on a Grafana SDK: the JSON model is small and stable, and plain objects keep the
 * generated files reviewable.
 */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Every panel and variable reads from the dashboard's datasource variable. */
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** Matchers on series that carry cluster_id (shard metrics and the cluster_node: recording rules). */
const CLUSTER = 'job=~"$job", cluster_id=~"$cluster_id", instance=~"$instance"';
/** Matchers on node-level series, which carry no cluster_id: they are joined with IDENTITY instead. */
const NODE = 'job=~"$job", instance=~"$instance"';
/** The node identity recorded by rules/datastore-exporter.rules.yml, kept while a datastore is down. */
const IDENTITY = `cluster_node:datastore_node_info:last_known{${CLUSTER}}`;

/** `<expr> * on (job, instance) group_left (<labels>) <identity>`: adds node_id (and cluster_id). */
function withIdentity(expr: string, labels = 'cluster_id, node_id'): string {
  return `${expr} * on (job, instance) group_left (${labels}) ${IDENTITY}`;
}

/**
 * Each node's commit offset as a position comparable across the nodes of its shard. Where the
 * datastore counts within epochs (datastore_shard_commit_epoch: ZooKeeper's zxid counter restarts with
 * each leader election), only offsets of the shard's newest epoch count as they are, and a node still
 * in an older epoch is at 0 of the newest one (it has none of its writes); elsewhere (no epoch series:
 * epoch 0 everywhere), the offset itself.
 */
function commitPosition(): string {
  const offset = `datastore_shard_commit_offset{${CLUSTER}}`;
  const epoch = `(datastore_shard_commit_epoch{${CLUSTER}} or 0 * ${offset})`;
  return (
    `(${offset} and on (job, instance, cluster_id, shard_id) ` +
    `(${epoch} == on (job, cluster_id, shard_id) group_left max by (job, cluster_id, shard_id) (${epoch})) ` +
    `or 0 * ${offset})`
  );
}

/** Per-second rate of a node-level counter, labelled with the node's cluster and node id. */
function nodeRate(counter: string, by: string): string {
  return `sum by (${by}) (${withIdentity(`rate(${counter}{${NODE}}[$__rate_interval])`)})`;
}

export const DASHBOARD_UIDS = {
  overview: 'datastore-cluster-overview',
  node: 'datastore-node',
} as const;

interface Target {
  expr: string;
  legend?: string;
}

type PanelKind = 'timeseries' | 'stat' | 'table';

interface PanelSpec {
  kind: PanelKind;
  title: string;
  description: string;
  unit: string;
  targets: Target[];
  /** Grid width (of 24) and height. */
  w: number;
  h?: number;
  /** Stat thresholds as [color, from] steps; the first step's `from` is null. */
  thresholds?: [string, number | null][];
  /** Stat value text by number. */
  mappings?: Record<string, [string, string]>;
  /** Time series: draw steps (for states such as a role). */
  steps?: boolean;
  /** Table: columns to hide. */
  hide?: string[];
}

interface RowSpec {
  row: string;
  panels: PanelSpec[];
}

function thresholds(steps: [string, number | null][] = [['green', null]]): Json {
  return { mode: 'absolute', steps: steps.map(([color, value]) => ({ color, value })) };
}

function valueMappings(mappings: Record<string, [string, string]> | undefined): Json[] {
  if (!mappings) return [];
  const options: Record<string, Json> = {};
  Object.entries(mappings).forEach(([value, [text, color]], index) => {
    options[value] = { text, color, index };
  });
  return [{ type: 'value', options }];
}

function target(t: Target, index: number, kind: PanelKind): Json {
  const base: Record<string, Json> = {
    datasource: DATASOURCE,
    refId: String.fromCharCode(65 + index),
    expr: t.expr,
    legendFormat: t.legend ?? '__auto',
  };
  if (kind === 'timeseries') return { ...base, range: true, instant: false };
  // Stats and tables show the current state: one instant query, no time series to download.
  return { ...base, range: false, instant: true, format: kind === 'table' ? 'table' : 'time_series' };
}

function panel(spec: PanelSpec, id: number, x: number, y: number): Json {
  const h = spec.h ?? 8;
  const common: Record<string, Json> = {
    id,
    type: spec.kind,
    title: spec.title,
    description: spec.description,
    datasource: DATASOURCE,
    gridPos: { h, w: spec.w, x, y },
    targets: spec.targets.map((t, i) => target(t, i, spec.kind)),
  };
  const defaults: Record<string, Json> = {
    unit: spec.unit,
    thresholds: thresholds(spec.thresholds),
    mappings: valueMappings(spec.mappings),
  };
  if (spec.kind === 'timeseries') {
    return {
      ...common,
      fieldConfig: {
        defaults: {
          ...defaults,
          color: { mode: 'palette-classic' },
          custom: {
            drawStyle: 'line',
            lineInterpolation: spec.steps ? 'stepAfter' : 'linear',
            lineWidth: 1,
            fillOpacity: 0,
            showPoints: 'never',
            spanNulls: false,
          },
        },
        overrides: [],
      },
      options: {
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    };
  }
  if (spec.kind === 'stat') {
    return {
      ...common,
      fieldConfig: { defaults: { ...defaults, color: { mode: 'thresholds' } }, overrides: [] },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'background',
        graphMode: 'none',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'value_and_name',
      },
    };
  }
  return {
    ...common,
    fieldConfig: { defaults, overrides: [] },
    options: { showHeader: true, cellHeight: 'sm' },
    transformations: [
      {
        id: 'organize',
        options: {
          excludeByName: Object.fromEntries(['Time', ...(spec.hide ?? [])].map((c) => [c, true])),
        },
      },
    ],
  };
}

/** Lays rows out top to bottom, panels left to right, wrapping at 24 columns. */
function layout(rows: RowSpec[]): Json[] {
  const out: Json[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    out.push({
      id: id++,
      type: 'row',
      title: row.row,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const spec of row.panels) {
      if (x + spec.w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      out.push(panel(spec, id++, x, y));
      x += spec.w;
      rowHeight = Math.max(rowHeight, spec.h ?? 8);
    }
    y += rowHeight;
  }
  return out;
}

function queryVariable(name: string, label: string, query: string, description: string): Json {
  return {
    name,
    label,
    description,
    type: 'query',
    datasource: DATASOURCE,
    definition: query,
    query,
    refresh: 2,
    regex: '',
    sort: 1,
    multi: true,
    includeAll: true,
    allValue: '.+',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    hide: 0,
  };
}

function templating(): Json {
  return {
    list: [
      {
        name: 'datasource',
        label: 'Data source',
        type: 'datasource',
        query: 'prometheus',
        regex: '',
        current: {},
        options: [],
        hide: 0,
        refresh: 1,
        includeAll: false,
        multi: false,
      },
      queryVariable(
        'job',
        'Job',
        'label_values(datastore_exporter_build_info, job)',
        'Prometheus jobs scraping datastore-exporter.',
      ),
      queryVariable(
        'cluster_id',
        'Cluster_id',
        'label_values(cluster_node:datastore_node_info:last_known{job=~"$job"}, cluster_id)',
        "Clusters (--cluster-id, or the datastore's own cluster identity). Needs the recording rules.",
      ),
      queryVariable(
        'instance',
        'Instance',
        'label_values(cluster_node:datastore_node_info:last_known{job=~"$job", cluster_id=~"$cluster_id"}, instance)',
        'Exporter targets (one per datastore node) in the selected clusters.',
      ),
    ],
  };
}

function dashboard(uid: string, title: string, description: string, rows: RowSpec[]): Json {
  return {
    id: null,
    uid,
    title,
    description,
    tags: ['datastore-exporter'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    timepicker: {},
    timezone: '',
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    links: [
      {
        title: 'Datastore dashboards',
        type: 'dashboards',
        tags: ['datastore-exporter'],
        asDropdown: false,
        includeVars: true,
        keepTime: true,
        icon: 'external link',
        targetBlank: false,
        tooltip: '',
        url: '',
      },
    ],
    templating: templating(),
    panels: layout(rows),
  };
}

const UP_MAPPINGS: Record<string, [string, string]> = { '0': ['DOWN', 'red'], '1': ['UP', 'green'] };
const UP_THRESHOLDS: [string, number | null][] = [
  ['red', null],
  ['green', 1],
];

const DATASTORE_UP =
  "Whether the exporter's last collection from its datastore node succeeded (datastore_up). DOWN: the node is down, unreachable, hung or refuses the exporter's credentials; the node's model metrics are then absent, so it is listed here with its last known identity.";
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
const LAG =
  "Seconds each replica is behind its shard's primary, only where the datastore knows it honestly (never a fake 0; primaries have none). Redis knows it only while a replica's link to its primary is down; see the offset panel for a live Redis replica.";
const LAST_OP =
  'Seconds since the last write the shard saw. Where the datastore keeps no last-write time (e.g. Redis) it is the time the exporter first saw the write position advance, so its resolution is one collection interval. A steady climb means no writes: idle, or a primary that accepts none. Absent until a first write is seen.';

function overview(): Json {
  return dashboard(
    DASHBOARD_UIDS.overview,
    'Datastore / Cluster overview',
    'Per cluster and shard: who is primary, replication lag, last operation, role changes; clients and read/write rates per node; exporter health. Made for datastore-exporter (any datastore it supports).',
    [
      {
        row: 'Shards: who is primary',
        panels: [
          {
            kind: 'table',
            title: 'Primary of each shard',
            description:
              'The node that reports itself primary for each shard, now. A shard missing here has no primary (DatastoreMissingPrimary); a shard listed twice has two (DatastoreMultiplePrimaries).',
            unit: 'none',
            w: 12,
            hide: ['Value'],
            targets: [
              {
                expr: `max by (cluster_id, shard_id, node_id, instance) (${withIdentity(
                  `(datastore_shard_role{${CLUSTER}, role="primary"} == 1)`,
                  'node_id',
                )})`,
              },
            ],
          },
          {
            kind: 'stat',
            title: 'Primaries per shard',
            description:
              'Nodes reporting themselves primary, per shard: 1 is healthy, 0 means no primary, 2 or more is a split brain. Only nodes whose exporter answers are counted: a shard whose nodes are all gone disappears from this panel (the alert still fires).',
            unit: 'none',
            w: 12,
            thresholds: [
              ['red', null],
              ['green', 1],
              ['red', 2],
            ],
            targets: [
              {
                expr: `sum by (cluster_id, shard_id) (datastore_shard_role{${CLUSTER}, role="primary"})`,
                legend: '{{cluster_id}} / {{shard_id}}',
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
                expr: `max by (cluster_id, shard_id, node_id) (${withIdentity(
                  `datastore_shard_role{${CLUSTER}, role="primary"}`,
                  'node_id',
                )})`,
                legend: '{{cluster_id}} / {{shard_id}} on {{node_id}}',
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
                expr: `sum by (cluster_id, shard_id, role) (datastore_shard_role{${CLUSTER}})`,
                legend: '{{cluster_id}} / {{shard_id}} {{role}}',
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
                expr: `sum by (cluster_id, shard_id) (changes(datastore_shard_role{${CLUSTER}, role="primary"}[$__range]))`,
                legend: '{{cluster_id}} / {{shard_id}}',
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
            title: 'Replication lag by replica',
            description: LAG,
            unit: 's',
            w: 8,
            targets: [
              {
                expr: `max by (cluster_id, shard_id, node_id) (${withIdentity(
                  `datastore_shard_replication_lag_seconds{${CLUSTER}}`,
                  'node_id',
                )})`,
                legend: '{{cluster_id}} / {{shard_id}} on {{node_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: "Commit offset behind the shard's newest",
            description:
              "How far each node's commit offset is behind the highest offset any node of the same shard reports, in the datastore's own unit (bytes of replication stream for Redis, WAL bytes for PostgreSQL, revisions for etcd, transactions of the newest leader epoch for ZooKeeper, whose in-sync followers stay at 0 across an election...). Works while a replica is connected, where lag in seconds may be unknown. Compare nodes only with Instance set to All.",
            unit: 'short',
            w: 8,
            targets: [
              {
                expr: `max by (cluster_id, shard_id, node_id) (${withIdentity(
                  `(max by (job, cluster_id, shard_id) (${commitPosition()}) - on (job, cluster_id, shard_id) group_right () ${commitPosition()})`,
                  'node_id',
                )})`,
                legend: '{{cluster_id}} / {{shard_id}} on {{node_id}}',
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
                expr: `time() - max by (cluster_id, shard_id) (datastore_shard_last_operation_timestamp_seconds{${CLUSTER}})`,
                legend: '{{cluster_id}} / {{shard_id}}',
              },
            ],
          },
        ],
      },
      {
        row: 'Traffic',
        panels: [
          {
            kind: 'timeseries',
            title: 'Clients connected',
            description: CLIENTS,
            unit: 'short',
            w: 8,
            targets: [
              {
                expr: `sum by (cluster_id, node_id) (cluster_node:datastore_clients_connected{${CLUSTER}})`,
                legend: '{{cluster_id}} / {{node_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Reads per second',
            description:
              'Read operations per second on each node, as the datastore counts them (the README defines reads per datastore; e.g. Redis: calls of read-only commands).',
            unit: 'ops',
            w: 8,
            targets: [
              {
                expr: nodeRate('datastore_reads_total', 'cluster_id, node_id'),
                legend: '{{cluster_id}} / {{node_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Writes per second',
            description:
              'Write operations per second on each node, as the datastore counts them (on replicas this includes replicated writes where the datastore counts them).',
            unit: 'ops',
            w: 8,
            targets: [
              {
                expr: nodeRate('datastore_writes_total', 'cluster_id, node_id'),
                legend: '{{cluster_id}} / {{node_id}}',
              },
            ],
          },
        ],
      },
      {
        row: 'Exporter health',
        panels: [
          {
            kind: 'stat',
            title: 'Datastore reachable',
            description: DATASTORE_UP,
            unit: 'none',
            w: 6,
            thresholds: UP_THRESHOLDS,
            mappings: UP_MAPPINGS,
            targets: [
              {
                expr: `min by (cluster_id, node_id) (cluster_node:datastore_up{${CLUSTER}})`,
                legend: '{{cluster_id}} / {{node_id}}',
              },
            ],
          },
          {
            kind: 'stat',
            title: 'Exporter scraped',
            description: EXPORTER_UP,
            unit: 'none',
            w: 6,
            thresholds: UP_THRESHOLDS,
            mappings: UP_MAPPINGS,
            targets: [
              {
                expr: `min by (cluster_id, node_id) (${withIdentity(`up{${NODE}}`)})`,
                legend: '{{cluster_id}} / {{node_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Snapshot age',
            description: SNAPSHOT_AGE,
            unit: 's',
            w: 6,
            targets: [
              {
                expr: `max by (cluster_id, node_id) (cluster_node:datastore_exporter_snapshot_age_seconds{${CLUSTER}})`,
                legend: '{{cluster_id}} / {{node_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Collection duration',
            description: COLLECT_DURATION,
            unit: 's',
            w: 6,
            targets: [
              {
                expr: `max by (cluster_id, node_id) (cluster_node:datastore_exporter_collect_duration_seconds{${CLUSTER}})`,
                legend: '{{cluster_id}} / {{node_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Collection errors per second',
            description: COLLECT_ERRORS,
            unit: 'cps',
            w: 8,
            targets: [
              {
                expr: nodeRate('datastore_exporter_collect_errors_total', 'cluster_id, node_id'),
                legend: '{{cluster_id}} / {{node_id}}',
              },
            ],
          },
          {
            kind: 'table',
            title: 'Datastore versions',
            description:
              'Datastore and version of each node (datastore_version_info): check a rolling upgrade.',
            unit: 'none',
            w: 8,
            hide: ['Value'],
            targets: [
              {
                expr: `max by (cluster_id, node_id, instance, datastore, version) (${withIdentity(
                  `datastore_version_info{${NODE}}`,
                )})`,
              },
            ],
          },
          {
            kind: 'table',
            title: 'Exporter versions',
            description: 'Exporter and Node.js version of each exporter (datastore_exporter_build_info).',
            unit: 'none',
            w: 8,
            hide: ['Value'],
            targets: [
              {
                expr: `max by (cluster_id, node_id, instance, version, nodejs_version) (${withIdentity(
                  `datastore_exporter_build_info{${NODE}}`,
                )})`,
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
    "One datastore node (pick it with Instance): reachability, identity, its role and lag in each shard, last operation, commit offset, clients, reads/writes and the exporter's own health.",
    [
      {
        row: 'Node',
        panels: [
          {
            kind: 'stat',
            title: 'Datastore reachable',
            description: DATASTORE_UP,
            unit: 'none',
            w: 6,
            h: 6,
            thresholds: UP_THRESHOLDS,
            mappings: UP_MAPPINGS,
            targets: [
              {
                expr: `min by (node_id, instance) (cluster_node:datastore_up{${CLUSTER}})`,
                legend: '{{node_id}}',
              },
            ],
          },
          {
            kind: 'stat',
            title: 'Exporter scraped',
            description: EXPORTER_UP,
            unit: 'none',
            w: 6,
            h: 6,
            thresholds: UP_THRESHOLDS,
            mappings: UP_MAPPINGS,
            targets: [
              { expr: `min by (node_id, instance) (${withIdentity(`up{${NODE}}`)})`, legend: '{{node_id}}' },
            ],
          },
          {
            kind: 'table',
            title: 'Identity',
            description:
              'Datastore, version, node id and cluster id of the node (datastore_version_info, datastore_node_info), kept while the datastore is down.',
            unit: 'none',
            w: 12,
            h: 6,
            hide: ['Value'],
            targets: [
              {
                expr: `max by (datastore, version, cluster_id, node_id, instance) (${withIdentity(
                  `datastore_version_info{${NODE}}`,
                )})`,
              },
            ],
          },
          {
            kind: 'table',
            title: 'Shards and roles',
            description:
              'Every shard the node holds and its current role there (primary, secondary or unknown).',
            unit: 'none',
            w: 24,
            h: 6,
            hide: ['Value'],
            targets: [
              {
                expr: `max by (cluster_id, shard_id, role, node_id) (${withIdentity(
                  `(datastore_shard_role{${CLUSTER}} == 1)`,
                  'node_id',
                )})`,
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
            description:
              '1 while the node is primary of the shard, 0 while it is not: role changes show as steps.',
            unit: 'none',
            w: 12,
            steps: true,
            targets: [
              {
                expr: `max by (node_id, shard_id) (${withIdentity(
                  `datastore_shard_role{${CLUSTER}, role="primary"}`,
                  'node_id',
                )})`,
                legend: '{{node_id}} / {{shard_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Replication lag',
            description: LAG,
            unit: 's',
            w: 12,
            targets: [
              {
                expr: `max by (node_id, shard_id) (${withIdentity(
                  `datastore_shard_replication_lag_seconds{${CLUSTER}}`,
                  'node_id',
                )})`,
                legend: '{{node_id}} / {{shard_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Time since last operation',
            description: LAST_OP,
            unit: 's',
            w: 8,
            targets: [
              {
                expr: `time() - max by (node_id, shard_id) (${withIdentity(
                  `datastore_shard_last_operation_timestamp_seconds{${CLUSTER}}`,
                  'node_id',
                )})`,
                legend: '{{node_id}} / {{shard_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Commit offset',
            description:
              "The datastore's own monotonic position in each shard (datastore_shard_commit_offset): bytes of replication stream for Redis, WAL position for PostgreSQL, revision for etcd, the zxid's counter within its epoch for ZooKeeper (it restarts at 0 at each leader election; the epoch is datastore_shard_commit_epoch)...",
            unit: 'short',
            w: 8,
            targets: [
              {
                expr: `max by (node_id, shard_id) (${withIdentity(
                  `datastore_shard_commit_offset{${CLUSTER}}`,
                  'node_id',
                )})`,
                legend: '{{node_id}} / {{shard_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Commit offset movement',
            description:
              "How fast the commit offset moves forward, in the datastore's unit per second. rate(), not deriv(): a position that starts over (a new ZooKeeper epoch, a restarted Redis primary without persistence) counts as a reset, not as a huge negative movement. Flat on a replica while its primary moves = the replica is not applying.",
            unit: 'short',
            w: 8,
            targets: [
              {
                expr: `max by (node_id, shard_id) (${withIdentity(
                  `rate(datastore_shard_commit_offset{${CLUSTER}}[$__rate_interval])`,
                  'node_id',
                )})`,
                legend: '{{node_id}} / {{shard_id}}',
              },
            ],
          },
        ],
      },
      {
        row: 'Traffic',
        panels: [
          {
            kind: 'timeseries',
            title: 'Clients connected',
            description: CLIENTS,
            unit: 'short',
            w: 12,
            targets: [
              {
                expr: `max by (node_id) (cluster_node:datastore_clients_connected{${CLUSTER}})`,
                legend: '{{node_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Operations per second',
            description:
              'Reads and writes per second as the datastore counts them (the README defines them per datastore).',
            unit: 'ops',
            w: 12,
            targets: [
              { expr: nodeRate('datastore_reads_total', 'node_id'), legend: '{{node_id}} reads' },
              { expr: nodeRate('datastore_writes_total', 'node_id'), legend: '{{node_id}} writes' },
            ],
          },
        ],
      },
      {
        row: 'Exporter',
        panels: [
          {
            kind: 'timeseries',
            title: 'Snapshot age',
            description: SNAPSHOT_AGE,
            unit: 's',
            w: 8,
            targets: [
              {
                expr: `max by (node_id) (cluster_node:datastore_exporter_snapshot_age_seconds{${CLUSTER}})`,
                legend: '{{node_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Collection duration',
            description: COLLECT_DURATION,
            unit: 's',
            w: 8,
            targets: [
              {
                expr: `max by (node_id) (cluster_node:datastore_exporter_collect_duration_seconds{${CLUSTER}})`,
                legend: '{{node_id}}',
              },
            ],
          },
          {
            kind: 'timeseries',
            title: 'Collection errors per second',
            description: COLLECT_ERRORS,
            unit: 'cps',
            w: 8,
            targets: [
              { expr: nodeRate('datastore_exporter_collect_errors_total', 'node_id'), legend: '{{node_id}}' },
            ],
          },
        ],
      },
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

/** The exact text committed for a dashboard: 2-space JSON and a final newline. */
export function renderDashboard(model: Json): string {
  return `${JSON.stringify(model, null, 2)}\n`;
}
