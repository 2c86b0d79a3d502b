/**
 * The recording and alerting rules, built from a RulesConfig (scripts/rules/config.ts). The shipped
 * rules/datastore-exporter.rules.yml is this with DEFAULT_CONFIG, rendered by scripts/rules/render.ts;
 * test/rules.test.ts checks that the committed file is exactly that render and runs promtool on it.
 *
 * Conventions: a cluster is (job, cluster_id), a shard is (job, cluster_id, shard_id), a node is
 * (job, instance): one exporter per datastore node. Node-level series (datastore_up, clients,
 * counters, the exporter's own) carry no cluster_id: the node identity below attaches it.
 */
import { durationSeconds, durationText, type RulesConfig } from './config';

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Comment lines written above the rule in the YAML (why it is built this way). */
  comment?: string[];
}

export interface RuleGroup {
  name: string;
  rules: Rule[];
}

/** Names of the recording rules, shared by the rules that read them and by the tests. */
export const RECORD = {
  nodeInfo: 'cluster_node:datastore_node_info:last_known',
  shardMember: 'cluster_shard_node:datastore_shard_member:last_known',
  shardPrimary: 'cluster_shard_node:datastore_shard_primary:last_known',
  shardInfo: 'cluster_shard:datastore_shard_info:last_known',
  following: 'cluster_shard:datastore_replicas_following_primary:count',
  writerStopped: 'cluster_shard:datastore_heartbeat_age_seconds:writer_stopped',
  replicaDataTime: 'cluster_shard_node:datastore_replica_data_timestamp_seconds:last_known',
  replicaStaleness: 'cluster_shard_node:datastore_replica_staleness_seconds',
} as const;

/** Indents every line of a multi-line PromQL fragment by `n` spaces (for nesting). */
function indent(text: string, n = 2): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((l) => (l === '' ? l : pad + l))
    .join('\n');
}

export function buildRules(c: RulesConfig): RuleGroup[] {
  /** A selector of the exporter's series: the metric with the configured matchers and `extra`. */
  const s = (metric: string, ...extra: string[]): string => {
    const matchers = [c.selector, ...extra].filter((m) => m !== '').join(', ');
    return matchers === '' ? metric : `${metric}{${matchers}}`;
  };
  const M = c.shardMemory;
  const F = c.followingWindow;
  const SHARD = 'job, cluster_id, shard_id';
  const SHARD_NODE = 'job, instance, cluster_id, shard_id';
  const runbook = (alert: string): string => `${c.runbookBaseUrl}${alert.toLowerCase()}`;

  /** "Shard s of cluster c" or, when the shard is the whole dataset (named after it), "Cluster c". */
  const shardName = (capital: boolean): string =>
    `{{ if eq $labels.shard_id $labels.cluster_id }}${capital ? 'C' : 'c'}luster {{ $labels.cluster_id }}` +
    `{{ else }}${capital ? 'S' : 's'}hard {{ $labels.shard_id }} of cluster {{ $labels.cluster_id }}{{ end }}` +
    ' ({{ with $labels.datastore }}{{ . }}, {{ end }}job {{ $labels.job }})';
  /** Names the nodes of a shard that have `metric` (a recording rule of shard nodes) `filter`ed. */
  const nodesOf = (metric: string, filter: string, prefix: string, none: string): string => {
    const nodes = `(${metric}{job=%[1]q,cluster_id=%[2]q,shard_id=%[3]q}${filter})`;
    return (
      `{{ with printf \`${nodes} * on (job, instance) group_left (node_id) ${RECORD.nodeInfo} or on (job, instance) ${nodes}\`` +
      ' $labels.job $labels.cluster_id $labels.shard_id | query }}' +
      `${prefix}{{ range $i, $n := . }}{{ if $i }}, {{ end }}{{ with $n.Labels.node_id }}{{ . }} {{ end }}({{ $n.Labels.instance }}){{ end }}.` +
      `{{ else }}${none}{{ end }}`
    );
  };
  const lastPrimary = nodesOf(
    RECORD.shardPrimary,
    '',
    'Last known primary: ',
    'Last known primary: unknown.',
  );

  /** Adds the shard's datastore label; a shard the info rule does not know passes unlabelled. */
  const withDatastore = (expr: string): string =>
    `(\n${indent(expr)}\n)\n* on (${SHARD}) group_left (datastore)\n${RECORD.shardInfo}\n` +
    `or on (${SHARD})\n(\n${indent(expr)}\n)`;

  const recording: Rule[] = [
    {
      record: RECORD.nodeInfo,
      comment: [
        'The node identity of every exporter target, kept while the datastore is down. The exporter drops',
        'datastore_node_info when a collection fails (no stale numbers), which would otherwise make a',
        'down node vanish from every cluster-filtered query exactly when it matters. In order of preference:',
        ' 1. the current datastore_node_info;',
        " 2. this rule's own result from the previous evaluation, carried forward while the target is still",
        '    in service discovery (`up` exists), so it survives outages of any length. Only the previous',
        '    result is visible (Prometheus marks series a rule stops producing as stale), so after a node id',
        '    change the newest identity is the one carried; topk is a guard for a Prometheus restart;',
        ' 3. an identity-less series (job, instance only) for an exporter that answers but has never',
        '    reached its datastore, so joins against this rule never drop a target (alerts still fire).',
      ],
      expr: `${s('datastore_node_info')}
or on (job, instance)
topk by (job, instance) (
  1,
  ${RECORD.nodeInfo}{cluster_id!=""}
  and on (job, instance)
  ${s('up')}
)
or on (job, instance)
group by (job, instance) (${s('datastore_up')})`,
    },
    ...(
      [
        ['datastore_up', 'datastore_up'],
        ['datastore_clients_connected', 'datastore_clients_connected'],
        ['datastore_exporter_collect_duration_seconds', 'datastore_exporter_collect_duration_seconds'],
      ] as const
    ).map(([name, metric]): Rule => ({
      record: `cluster_node:${name}`,
      ...(name === 'datastore_up'
        ? {
            comment: [
              'Node-level series with the node identity attached, for your own queries and dashboards (the',
              'bundled dashboards join the identity themselves, so that they work without these rules).',
            ],
          }
        : {}),
      expr: `${s(metric)}
* on (job, instance) group_left (datastore, cluster_id, node_id)
${RECORD.nodeInfo}`,
    })),
    {
      record: 'cluster_node:datastore_exporter_snapshot_age_seconds',
      comment: [
        "Age of the exporter's snapshot as seen by Prometheus' clock (0 = never succeeded: no series).",
      ],
      expr: `(time() - (${s('datastore_exporter_last_collect_success_timestamp_seconds')} > 0))
* on (job, instance) group_left (datastore, cluster_id, node_id)
${RECORD.nodeInfo}`,
    },
    {
      record: RECORD.shardMember,
      comment: [
        'Which nodes hold which shard (value 1 on the primary, 0 on any other role), with the datastore',
        '(when the node identity knows it: the second operand keeps a node without one).',
        'While nodes report a shard, they are its members. When every member of a shard stops reporting at',
        'once (all its exporters or datastores gone: a total outage) the membership is carried forward,',
        "from this rule's previous result, for as long as the members' targets stay in service discovery:",
        'the shard does not vanish while it is down. As soon as any former member reports anything again',
        'the carried membership is dropped (a shard whose nodes report other shards was renamed or moved).',
      ],
      expr: `(
  (
    max by (${SHARD_NODE}) (${s('datastore_shard_role', 'role="primary"')} == 1)
    or on (${SHARD_NODE})
    0 * group by (${SHARD_NODE}) (${s('datastore_shard_role')})
  )
  * on (job, instance) group_left (datastore)
  max by (job, instance, datastore) (${RECORD.nodeInfo})
  or on (${SHARD_NODE})
  max by (${SHARD_NODE}) (${s('datastore_shard_role', 'role="primary"')} == 1)
  or on (${SHARD_NODE})
  0 * group by (${SHARD_NODE}) (${s('datastore_shard_role')})
)
or on (${SHARD})
(
  (${RECORD.shardMember} and on (job, instance) ${s('up')})
  unless on (${SHARD})
  (${RECORD.shardMember} and on (job, instance) ${s('datastore_shard_role')})
)`,
    },
    {
      record: RECORD.shardPrimary,
      comment: [
        'The last known primary of every shard: its current primaries, else the ones of the previous',
        'evaluation, while their targets stay in service discovery and the shard is still known.',
      ],
      expr: `(${RECORD.shardMember} == 1)
or on (${SHARD})
(
  ${RECORD.shardPrimary}
  and on (job, instance) ${s('up')}
  and on (${SHARD})
  (
    group by (${SHARD}) (${RECORD.shardMember})
    or
    group by (${SHARD}) (last_over_time(${s('datastore_shard_role')}[${M}]))
  )
)`,
    },
    {
      record: RECORD.shardInfo,
      comment: [
        `Every shard that is known (reported in the last ${M}, or carried through a total outage), with its`,
        'datastore: the shards DatastoreMissingPrimary watches, and the datastore label of shard alerts.',
      ],
      expr: `topk by (${SHARD}) (
  1,
  group by (${SHARD}, datastore) (
    ${RECORD.shardMember}
    or on (${SHARD_NODE})
    (
      group by (${SHARD_NODE}) (last_over_time(${s('datastore_shard_role')}[${M}]))
      * on (job, instance) group_left (datastore)
      max by (job, instance, datastore) (${RECORD.nodeInfo})
    )
  )
)
or on (${SHARD})
group by (${SHARD}) (last_over_time(${s('datastore_shard_role')}[${M}]))`,
    },
    {
      record: RECORD.following,
      comment: [
        'Per shard, how many secondaries show that a live primary feeds them: their commit offset moved, or',
        'they report a lag that does not grow with wall time, within the last ' +
          `${F}; or they are secondaries of a datastore whose`,
        `secondaries follow a live leader by definition (${c.leaderAwareDatastores.join(', ')}). A dead primary stops all of these`,
        "(offsets freeze, a lag counted from the link's loss or the last heartbeat grows at 1 s/s).",
      ],
      expr: `count by (${SHARD}) (
  (${s('datastore_shard_role', 'role="secondary"')} == 1)
  and on (${SHARD_NODE})
  (
    changes(${s('datastore_shard_commit_offset')}[${F}]) > 0
    or
    deriv(${s('datastore_shard_replication_lag_seconds')}[${F}]) < 0.5
    or
    (
      ${s('datastore_shard_role', 'role="secondary"')}
      and on (job, instance)
      ${s('datastore_node_info', `datastore=~"${c.leaderAwareDatastores.join('|')}"`)}
    )
  )
)`,
    },
    {
      record: RECORD.writerStopped,
      comment: [
        "Heartbeat mode: age of a shard's newest heartbeat when its writer has stopped, i.e. every node that",
        `reports the shard has the very same last heartbeat and it is older than ${c.heartbeatStoppedAfterSeconds} s. The writer is the`,
        "exporter beside the primary: it stopped, or the primary stopped accepting writes. The replicas'",
        'heartbeat lag then only counts the time since the last heartbeat, not replication delay.',
      ],
      expr: `(
  time() - max by (${SHARD}) (${s('datastore_shard_heartbeat_timestamp_seconds')})
  > ${c.heartbeatStoppedAfterSeconds}
)
and on (${SHARD})
(
  max by (${SHARD}) (${s('datastore_shard_heartbeat_timestamp_seconds')})
  ==
  min by (${SHARD}) (${s('datastore_shard_heartbeat_timestamp_seconds')})
)`,
    },
    {
      record: RECORD.replicaDataTime,
      comment: [
        "Up to when each replica has its primary's writes (now - lag), kept while the replica's datastore",
        'cannot be read (exporter up, datastore_up 0: down or hung), so that its staleness keeps growing',
        'instead of vanishing. Dropped when the exporter itself is gone (nothing known) or the node',
        'reports again.',
      ],
      expr: `(time() - ${s('datastore_shard_replication_lag_seconds')})
or on (${SHARD_NODE})
(
  ${RECORD.replicaDataTime}
  and on (job, instance) (${s('datastore_up')} == 0)
)`,
    },
    {
      record: RECORD.replicaStaleness,
      comment: [
        'Seconds each replica is behind: its lag while it can be read; while it cannot, the time since the',
        'newest write it had, growing (a lower bound of what it will be behind when it comes back).',
      ],
      expr: `time() - ${RECORD.replicaDataTime}`,
    },
  ];

  // ---------------------------------------------------------------------------------------------
  // Alerts

  const primaryNow = `(${s('datastore_shard_role', 'role="primary"')} == 1)`;
  const unobservedButFollowed = `group by (${SHARD}) (
  ${RECORD.shardPrimary}
  and on (job, instance) (${s('up')} == 0)
)
and on (${SHARD})
(${RECORD.following} > 0)`;

  const lagAlert = (severity: 'warning' | 'critical'): Rule => {
    const { thresholdSeconds: T, for: FOR, trendWindow: W } = c.lag[severity];
    const horizon = durationSeconds(FOR);
    return {
      alert: 'DatastoreReplicationLagHigh',
      ...(severity === 'warning'
        ? {
            comment: [
              "Lag is the replica's staleness: its reported lag, or, while its datastore cannot be read, the",
              'growing time since its newest write. "Already recovering" (falling fast enough to be back under',
              'the threshold within the `for:` window, by predict_linear) only counts once the trend window',
              'holds nothing but this episode (every sample above the threshold): a window reaching back into',
              'an earlier, recovered episode would see its fall and take a fresh episode for a recovering one.',
              'The `for:` window is as long as the trend window, so a fresh episode fires exactly as fast as',
              'the first one. Shards whose heartbeat writer stopped are left out (their lag is unknown, see',
              'DatastoreHeartbeatStopped).',
            ],
          }
        : {}),
      expr: `(
  ${RECORD.replicaStaleness} > ${T}
  unless on (${SHARD_NODE})
  (
    predict_linear(${RECORD.replicaStaleness}[${W}], ${horizon}) < ${T}
    and
    min_over_time(${RECORD.replicaStaleness}[${W}]) > ${T}
  )
  unless on (${SHARD})
  ${RECORD.writerStopped}
)
* on (job, instance) group_left (datastore, node_id)
${RECORD.nodeInfo}`,
      for: FOR,
      labels: { severity },
      annotations: {
        summary: `A replica is more than ${severity === 'warning' ? `${T} seconds` : durationText(`${T}s`)} behind its primary and not catching up.`,
        description:
          'Node {{ $labels.node_id }} ({{ $labels.instance }}) is {{ $value | humanizeDuration }} behind the primary of ' +
          `${shardName(false)}, and the lag is not falling fast enough to recover within ${durationText(FOR)}.` +
          `{{ with printf \`datastore_up{job=%q,instance=%q} == 0\` $labels.job $labels.instance | query }} The node cannot be read` +
          ' (datastore_up 0): this is the time since the newest write it had, and it grows until the node is back.{{ end }}',
        runbook_url: runbook('DatastoreReplicationLagHigh'),
      },
    };
  };

  const alerts: Rule[] = [
    {
      alert: 'DatastoreMissingPrimary',
      comment: [
        `A known shard (reported in the last ${M}, or whose nodes all went silent at once: kept while their`,
        'targets are in service discovery) with no node reporting itself primary. The value is the number',
        'of nodes still reporting the shard. Not fired for:',
        ' - a renamed shard: one that no node reports any more, but one of whose nodes of the last ' + `${M}`,
        '   is primary now (of whatever shard, under whatever cluster id), or whose last primary reports',
        '   again (a Redis 7.0 Cluster shard whose lowest member left, a changed --cluster-id, a Redis',
        '   Cluster whose lowest node was forgotten, a shard removed on purpose);',
        " - a primary that is only unobserved: its exporter cannot be scraped, but the shard's secondaries",
        '   show a live primary feeding them (DatastorePrimaryUnobserved, a warning, says so instead).',
      ],
      expr: `(
  count by (${SHARD}) (${s('datastore_shard_role')} == 1)
  * on (${SHARD}) group_left (datastore)
  ${RECORD.shardInfo}
  or on (${SHARD})
  0 * ${RECORD.shardInfo}
)
unless on (${SHARD})
${primaryNow}
unless on (${SHARD})
(
  (
    group by (${SHARD}) (
      last_over_time(${s('datastore_shard_role')}[${M}])
      and on (job, instance)
      ${primaryNow}
    )
    or
    group by (${SHARD}) (
      ${RECORD.shardPrimary}
      and on (job, instance)
      ${s('datastore_shard_role')}
    )
  )
  unless on (${SHARD})
  ${s('datastore_shard_role')}
)
unless on (${SHARD})
(
${indent(unobservedButFollowed)}
)`,
      for: c.for.missingPrimary,
      labels: { severity: 'critical' },
      annotations: {
        summary: 'A shard has no primary.',
        description:
          `${shardName(true)} has had no node reporting itself primary for ${durationText(c.for.missingPrimary)};` +
          ` {{ $value }} node(s) still report it. ${lastPrimary}`,
        runbook_url: runbook('DatastoreMissingPrimary'),
      },
    },
    {
      alert: 'DatastorePrimaryUnobserved',
      comment: [
        "No node reports itself primary, because the last primary's exporter cannot be scraped, while the",
        "shard's secondaries show that a live primary feeds them: the primary is probably fine and only",
        'unobserved. The value is the number of secondaries showing it.',
      ],
      expr: withDatastore(`(${RECORD.following} > 0)
and on (${SHARD})
(
${indent(unobservedButFollowed)}
)
unless on (${SHARD})
${primaryNow}`),
      for: c.for.primaryUnobserved,
      labels: { severity: 'warning' },
      annotations: {
        summary: "A shard's primary cannot be observed, but its replicas show it is alive.",
        description:
          `${shardName(true)} has no node reporting itself primary for ${durationText(c.for.primaryUnobserved)}, because its last known` +
          " primary's exporter cannot be scraped; {{ $value }} secondary node(s) still follow a live primary" +
          ` (their commit offsets move, or their lag holds). ${lastPrimary}`,
        runbook_url: runbook('DatastorePrimaryUnobserved'),
      },
    },
    {
      alert: 'DatastoreMultiplePrimaries',
      expr: withDatastore(`count by (${SHARD}) (${primaryNow}) > 1`),
      for: c.for.multiplePrimaries,
      labels: { severity: 'critical' },
      annotations: {
        summary: 'A shard has more than one primary (split brain).',
        description:
          `{{ $value }} nodes report themselves primary for ${shardName(false)}. ` +
          nodesOf(RECORD.shardMember, ' == 1', 'Primaries: ', ''),
        runbook_url: runbook('DatastoreMultiplePrimaries'),
      },
    },
    {
      alert: 'DatastoreClusterIdShared',
      comment: [
        'Several clusters behind one cluster_id, which merges their shards: a missing primary in one of',
        "them is hidden by another's primary, and two primaries may be two clusters rather than a split",
        'brain. Seen two ways: nodes of one cluster_id that replicate in different groups',
        "(replication_group, published where the cluster id is not the datastore's own: Redis's",
        "replication id, ZooKeeper's membership), which stays true after one cluster's primary is gone;",
        'or, where the datastore gives no replication group (MySQL/MariaDB, a standalone ZooKeeper),',
        'more than one primary under a fallback cluster id. The value: groups, or primaries.',
      ],
      expr: `count by (job, cluster_id) (
  group by (job, cluster_id, replication_group) (${s('datastore_node_info', 'replication_group!=""')})
) > 1
or on (job, cluster_id)
count by (job, cluster_id) (
  ${primaryNow}
  and on (job, instance)
  ${s('datastore_node_info', 'cluster_id_source="fallback"')}
) > 1`,
      for: c.for.clusterIdShared,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Several clusters report the same cluster id.',
        description:
          'Cluster id {{ $labels.cluster_id }} (job {{ $labels.job }}) is reported by {{ $value }} replication groups' +
          ' or primaries that do not replicate together: unrelated clusters share this id, so their shards are' +
          " merged and the primary alerts cannot tell them apart (a missing primary in one is hidden by another's)." +
          ' Give each cluster its own --cluster-id.',
        runbook_url: runbook('DatastoreClusterIdShared'),
      },
    },
    lagAlert('warning'),
    lagAlert('critical'),
    {
      alert: 'DatastoreHeartbeatStopped',
      comment: [
        "Heartbeat mode: the shard's heartbeat stopped on every node at the same value, so the writer (the",
        "primary's exporter) is not writing. Says why the replicas' heartbeat lag grows, instead of paging",
        'it as replication lag.',
      ],
      expr: withDatastore(RECORD.writerStopped),
      for: c.for.heartbeatStopped,
      labels: { severity: 'warning' },
      annotations: {
        summary: "A shard's heartbeat writer has stopped: its replicas' lag is unknown.",
        description:
          `No node of ${shardName(false)} has seen a new heartbeat for {{ $value | humanizeDuration }}, and all of them have the` +
          ' same last one: the heartbeat writer (the exporter beside the primary, with --heartbeat) stopped writing,' +
          " or the primary stopped accepting writes. The replicas' heartbeat lag only counts the time since then;" +
          ` replication lag alerts are held back for this shard. ${lastPrimary}`,
        runbook_url: runbook('DatastoreHeartbeatStopped'),
      },
    },
    {
      alert: 'DatastoreDown',
      comment: ["Labelled with the node's carried-forward identity (empty for a node never seen up)."],
      expr: `(${s('datastore_up')} == 0)
* on (job, instance) group_left (datastore, cluster_id, node_id)
${RECORD.nodeInfo}`,
      for: c.for.down,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'The exporter cannot collect from its datastore node.',
        description:
          'The exporter {{ $labels.instance }} (job {{ $labels.job }}) has failed to collect from' +
          ' {{ with $labels.datastore }}{{ . }} {{ end }}node {{ with $labels.node_id }}{{ . }}{{ else }}(never seen){{ end }}' +
          ' of cluster {{ with $labels.cluster_id }}{{ . }}{{ else }}(unknown){{ end }} for' +
          ` ${durationText(c.for.down)}: the node is down, unreachable, hung or refusing the exporter's credentials.`,
        runbook_url: runbook('DatastoreDown'),
      },
    },
    {
      alert: 'DatastoreExporterDown',
      comment: [
        'The `or` keeps targets that were never scraped successfully: they have no identity to join.',
      ],
      expr: `(${s('up', c.exporterTargetSelector)} == 0)
* on (job, instance) group_left (datastore, cluster_id, node_id)
${RECORD.nodeInfo}
or on (job, instance)
(${s('up', c.exporterTargetSelector)} == 0)`,
      for: c.for.exporterDown,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Prometheus cannot scrape a datastore exporter.',
        description:
          `Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for ${durationText(c.for.exporterDown)};` +
          ' it watched {{ with $labels.datastore }}{{ . }} {{ end }}node {{ with $labels.node_id }}{{ . }}{{ else }}(never seen){{ end }}' +
          ' of cluster {{ with $labels.cluster_id }}{{ . }}{{ else }}(unknown){{ end }}. Nothing is known about that node' +
          ' until it is back.',
        runbook_url: runbook('DatastoreExporterDown'),
      },
    },
    {
      alert: 'DatastoreCollectionStale',
      comment: [
        'The exporter claims success (datastore_up 1) but its last successful collection is old: the',
        "collection loop is wedged, or the exporter's clock is far from Prometheus'. A datastore that is",
        "down is DatastoreDown's job (datastore_up 0), so it is excluded here.",
      ],
      expr: `(
  (time() - ${s('datastore_exporter_last_collect_success_timestamp_seconds')} > ${c.collectionStaleSeconds})
  and on (job, instance)
  (${s('datastore_up')} == 1)
)
* on (job, instance) group_left (datastore, cluster_id, node_id)
${RECORD.nodeInfo}`,
      for: c.for.collectionStale,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'The exporter serves a snapshot older than a few collection intervals.',
        description:
          'The exporter {{ $labels.instance }} (job {{ $labels.job }}, node' +
          ' {{ with $labels.node_id }}{{ . }}{{ else }}(unknown){{ end }}) reports the datastore up, but its' +
          ' last successful collection was {{ $value | humanizeDuration }} ago.',
        runbook_url: runbook('DatastoreCollectionStale'),
      },
    },
    {
      alert: 'DatastorePrimaryChanged',
      comment: [
        'Informational: a failover or switchover happened. Counts flips of the primary role on nodes that',
        'are still reporting (a node that vanished is covered by DatastoreMissingPrimary).',
      ],
      expr: withDatastore(
        `sum by (${SHARD}) (changes(${s('datastore_shard_role', 'role="primary"')}[${c.primaryChangedWindow}])) > 0`,
      ),
      labels: { severity: 'info' },
      annotations: {
        summary: 'The primary of a shard changed.',
        description:
          `The primary role of ${shardName(false)} changed hands {{ $value }} time(s) in the last` +
          ` ${durationText(c.primaryChangedWindow)}. ${nodesOf(RECORD.shardMember, ' == 1', 'Primary now: ', 'No primary now.')}`,
        runbook_url: runbook('DatastorePrimaryChanged'),
      },
    },
  ];

  // One group: its rules are evaluated in order at the same timestamp, so every alert reads the
  // recording rules' results of this very evaluation (two groups run unsynchronised, one interval
  // apart at worst, which would shift every timing by an evaluation).
  return [{ name: 'datastore-exporter', rules: [...recording, ...alerts] }];
}
