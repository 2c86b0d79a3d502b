/**
 * Lint-style checks of the committed Grafana dashboards, after the conventions of Grafana's
 * dashboard-linter (which cannot be installed here): a templated datasource; job, cluster_id and
 * instance variables from label_values; every selector filtered by them; $__rate_interval in rates;
 * counters only inside rate(); a unit and a description on every panel; fixed uids. Also proves the
 * committed JSON is exactly what scripts/dashboards/dashboards.ts generates
 * (`npm run dashboards` or UPDATE_DASHBOARDS=1 rewrites it). Whether every query returns data is proven on a real Prometheus
 * in e2e-prometheus.test.ts.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDashboards, DASHBOARD_UIDS, renderDashboard } from '../scripts/dashboards/dashboards';
import { MODEL_HELP } from '../src/http/exposition';
import {
  allRules,
  dashboardQueries,
  DASHBOARDS_DIR,
  loadDashboards,
  panelsOf,
  ROOT,
  selectorsOf,
  substitute,
  type DashboardJson,
} from './support/prometheus';

/** Metric names of the contract, from the sources that define them: the model metrics
 * (src/http/exposition.ts) and the exporter's own (prom-client metrics in src/http/metrics.ts). */
function contractMetrics(): Set<string> {
  const src = readFileSync(join(ROOT, 'src', 'http', 'metrics.ts'), 'utf8');
  return new Set([...Object.keys(MODEL_HELP), ...[...src.matchAll(/name: '([a-z_]+)'/g)].map((m) => m[1]!)]);
}

/** Series that carry cluster_id and so must be filtered by it directly. */
function carriesClusterId(metric: string): boolean {
  return metric.startsWith('datastore_shard_') || metric.startsWith('cluster_node:');
}

// Grafana units valid for panels (subset of dashboard-linter's list that we may use), and Grafana's
// custom "suffix: <text>" units for the datastores' own position units.
const UNITS = new Set([
  'none',
  'short',
  's',
  'ms',
  'ops',
  'cps',
  'bytes',
  'Bps',
  'percentunit',
  'bool_yes_no',
]);
const isUnit = (u: string): boolean => UNITS.has(u) || /^suffix: [a-z][a-z /]+$/.test(u);

if (process.env.UPDATE_DASHBOARDS === '1') {
  for (const [file, model] of Object.entries(buildDashboards())) {
    writeFileSync(join(DASHBOARDS_DIR, file), renderDashboard(model));
  }
}

const dashboards = loadDashboards();

describe('dashboards are generated', () => {
  test('the committed JSON is exactly what scripts/dashboards/dashboards.ts generates (npm run dashboards)', () => {
    const generated = buildDashboards();
    expect(
      readdirSync(DASHBOARDS_DIR)
        .filter((f) => f.endsWith('.json'))
        .sort(),
    ).toEqual(Object.keys(generated).sort());
    for (const [file, model] of Object.entries(generated)) {
      expect(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')).toBe(renderDashboard(model));
    }
  });

  test('there is a cluster overview and a node drill-down with fixed, distinct uids', () => {
    const uids = dashboards.map((d) => d.json.uid);
    expect(uids.sort()).toEqual(Object.values(DASHBOARD_UIDS).sort());
    for (const { json } of dashboards) {
      expect(json.uid).toMatch(/^[a-z0-9-]{1,40}$/);
      // id null: imports and file provisioning both assign their own; the uid is what links rely on.
      expect(json.id).toBeNull();
      expect(json.title).toMatch(/^Datastore \/ /);
    }
  });
});

describe.each(dashboards.map((d) => [d.file, d.json] as [string, DashboardJson]))('%s', (_file, dash) => {
  const vars: DashboardJson[] = dash.templating.list;
  const variable = (name: string) => vars.find((v) => v.name === name);

  test('has a datasource variable and every panel and query uses it', () => {
    const ds = variable('datasource');
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus', label: 'Data source' });
    for (const p of panelsOf(dash)) {
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets) expect(t.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
  });

  test('job, cluster_id and instance variables come from label_values, multi-select with All = .+', () => {
    const expected: Record<string, { label: string; filters: string[] }> = {
      job: { label: 'Job', filters: [] },
      cluster_id: { label: 'Cluster_id', filters: ['job=~"$job"'] },
      instance: { label: 'Instance', filters: ['job=~"$job"', 'cluster_id=~"$cluster_id"'] },
    };
    for (const [name, { label, filters }] of Object.entries(expected)) {
      const v = variable(name);
      expect(v).toBeDefined();
      expect(v).toMatchObject({
        type: 'query',
        label,
        multi: true,
        includeAll: true,
        allValue: '.+',
        datasource: { type: 'prometheus', uid: '${datasource}' },
      });
      const m = /^label_values\((.+), (\w+)\)$/.exec(v!.query);
      expect(m).not.toBeNull();
      expect(m![2]).toBe(name);
      for (const f of filters) expect(m![1]).toContain(f);
      expect(v!.definition).toBe(v!.query);
    }
    // Variables resolve in order: each one may only use variables defined before it.
    expect(vars.map((v) => v.name)).toEqual(['datasource', 'job', 'cluster_id', 'instance', 'lookback']);
    // Raw series, not the recording rules: the dashboards work on a Prometheus without them.
    for (const name of ['cluster_id', 'instance']) expect(variable(name)!.query).not.toContain(':');
  });

  test('$lookback (how long gone nodes stay on the panels) is a duration picked from a list', () => {
    const v = variable('lookback');
    expect(v).toMatchObject({
      type: 'custom',
      multi: false,
      includeAll: false,
      label: 'Keep gone nodes for',
    });
    const options: string[] = v!.options.map((o: DashboardJson) => o.value);
    expect(v!.query).toBe(options.join(','));
    for (const o of options) expect(o).toMatch(/^\d+[mhdw]$/);
    expect(options).toContain(v!.current.value);
  });

  test('every panel has a title, a description and a valid unit; ids are unique', () => {
    const panels = panelsOf(dash);
    expect(panels.length).toBeGreaterThan(5);
    expect(new Set(dash.panels.map((p: DashboardJson) => p.id)).size).toBe(dash.panels.length);
    for (const p of panels) {
      expect(['timeseries', 'stat', 'table']).toContain(p.type);
      expect(p.title.length).toBeGreaterThan(3);
      expect(p.description.length).toBeGreaterThan(20);
      expect(isUnit(p.fieldConfig.defaults.unit)).toBe(true);
      for (const o of p.fieldConfig.overrides)
        for (const prop of o.properties.filter((x: DashboardJson) => x.id === 'unit'))
          expect(`${p.title}: ${prop.value} ${isUnit(prop.value)}`).toBe(`${p.title}: ${prop.value} true`);
      expect(p.targets.length).toBeGreaterThan(0);
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      // Stats and tables show the current state (instant); graphs are range queries.
      for (const t of p.targets) expect(t.instant).toBe(p.type !== 'timeseries');
    }
  });

  const queries = dashboardQueries(dash);
  const known = new Set([
    ...contractMetrics(),
    ...allRules()
      .map((r) => r.record)
      .filter((r): r is string => !!r),
    'up',
  ]);

  test.each(queries.map((q) => [`${q.panel} ${q.refId}`, q.expr]))(
    'query %s: filtered by job, cluster_id and instance; rates over $__rate_interval; known metrics',
    (_name, expr) => {
      const { selectors, bare } = selectorsOf(expr);
      expect(bare).toEqual([]);
      expect(selectors.length).toBeGreaterThan(0);
      const has = (s: (typeof selectors)[number], name: string) =>
        s.matchers.some((m) => m.name === name && m.op === '=~' && m.value === `$${name}`);
      for (const s of selectors) {
        expect(known).toContain(s.metric);
        expect(has(s, 'job')).toBe(true);
        expect(has(s, 'instance')).toBe(true);
        if (carriesClusterId(s.metric)) expect(has(s, 'cluster_id')).toBe(true);
        // Counters only make sense through rate(); rate() only over $__rate_interval.
        const fn = /(\w+)\(\s*$/.exec(s.before)?.[1];
        if (s.metric.endsWith('_total')) expect(fn).toBe('rate');
        if (fn === 'rate' || fn === 'irate' || fn === 'increase') expect(s.range).toBe('$__rate_interval');
        if (s.range !== undefined)
          expect(['$__rate_interval', '$__range', '$__interval', '$lookback']).toContain(s.range);
        // What a gone node last reported: only ever kept for $lookback.
        if (fn === 'last_over_time') expect(s.range).toBe('$lookback');
      }
      // Node-level series carry no cluster_id: the query must still filter the cluster, via the join.
      expect(selectors.some((s) => has(s, 'cluster_id'))).toBe(true);
      // The exporter's own series only: imported alone, without the recording rules, it shows data.
      expect(selectors.filter((s) => s.metric.includes(':')).map((s) => s.metric)).toEqual([]);
      // Subqueries only look back $lookback, at the dashboard's interval.
      const code = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
      for (const m of code.matchAll(/\)\[([^\]]+)\]/g)) expect(m[1]).toBe('$lookback:$__interval');
      // And it must be a complete expression once Grafana has substituted everything.
      expect(() => substitute(expr, { job: 'All', cluster_id: ['a'], instance: 'All' })).not.toThrow();
    },
  );
});

describe('the lint helpers can fail', () => {
  test('a selector without matchers, an unfiltered selector and a fixed rate window are caught', () => {
    expect(selectorsOf('sum(rate(datastore_reads_total[5m]))').bare).toEqual(['datastore_reads_total']);
    const { selectors } = selectorsOf('rate(datastore_writes_total{job=~"$job"}[1m]) * on (job) up{x="1"}');
    expect(selectors.map((s) => [s.metric, s.range])).toEqual([
      ['datastore_writes_total', '1m'],
      ['up', undefined],
    ]);
    expect(selectors[0]!.matchers).toEqual([{ name: 'job', op: '=~', value: '$job' }]);
  });

  test('Grafana-style substitution escapes values and refuses leftovers', () => {
    expect(substitute('up{instance=~"$instance"}', { instance: ['127.0.0.1:9860'] })).toBe(
      'up{instance=~"127\\\\.0\\\\.0\\\\.1:9860"}',
    );
    expect(substitute('up{job=~"$job"}', { job: ['a', 'b'] })).toBe('up{job=~"(a|b)"}');
    expect(() => substitute('up{job=~"$job"}', {})).toThrow(/unsubstituted/);
  });
});
