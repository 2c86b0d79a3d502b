/**
 * Which tier each test file belongs to. Every file in test/*.test.ts is named in exactly one list
 * (test/test-tiers.test.ts fails otherwise, so a new file gets a deliberate choice).
 *
 * unit: needs no server process. It may start the exporter in-process, fake servers on sockets in
 *   its own process (redis-stub, mongodb-wire, the Kafka fake broker) and run promtool / helm
 *   checks, but never a datastore, Prometheus, a browser or the built bin (dist/cli.js), so it needs
 *   neither `npm run build` nor the test servers. test/tiers/unit-guard.ts makes such a spawn throw.
 * live: everything else: real servers started by test/support, the built bin, floods.
 */
const UNIT = [
  'dashboards.test.ts',
  'dependencies.test.ts',
  'docs.test.ts',
  'flags.test.ts',
  'fuzz.test.ts',
  'golden-exposition.test.ts',
  'heartbeat-schedule.test.ts',
  'helm-chart.test.ts',
  'kafka-live.test.ts',
  'kafka-map.test.ts',
  'metrics-layer.test.ts',
  'mongodb-framing.test.ts',
  'mongodb-live.test.ts',
  'mongodb-map.test.ts',
  'mysql-format.test.ts',
  'postgresql-helpers.test.ts',
  'redaction.test.ts',
  'redis-cluster-identity.test.ts',
  'registry.test.ts',
  'snapshot.test.ts',
  'status-page.test.ts',
  'test-tiers.test.ts',
  'zookeeper-parse.test.ts',
];

const LIVE = [
  'auth-flood.test.ts',
  'bad-config.test.ts',
  'cli.test.ts',
  'collector.test.ts',
  'deferred-tracing.test.ts',
  'discovery-e2e.test.ts',
  'discovery.test.ts',
  'e2e-failures.test.ts',
  'e2e-identity.test.ts',
  'e2e-prometheus.test.ts',
  'etcd.test.ts',
  'healthcheck.test.ts',
  'heartbeat-etcd.test.ts',
  'heartbeat-mysql.test.ts',
  'heartbeat-postgresql.test.ts',
  'heartbeat-redis.test.ts',
  'heartbeat-zookeeper.test.ts',
  'hostile-replies.test.ts',
  'http-flood.test.ts',
  'mysql-default-mode.test.ts',
  'mysql.test.ts',
  'nats.test.ts',
  'packaging.test.ts',
  'peer-check.test.ts',
  'postgresql-default-mode.test.ts',
  'postgresql.test.ts',
  'probe-hardening.test.ts',
  'probe.test.ts',
  'rabbitmq.test.ts',
  'redis-cluster.test.ts',
  'redis-replication.test.ts',
  'reliability.test.ts',
  'replicante-api.test.ts',
  'rules.test.ts',
  'scale-out.test.ts',
  'secrets.test.ts',
  'status-page-browser.test.ts',
  'web-config.test.ts',
  'zookeeper.test.ts',
];

module.exports = { UNIT, LIVE };
