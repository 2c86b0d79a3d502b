/**
 * The alert and recording rules: `promtool check rules` and `promtool test rules` (the unit tests in
 * rules/tests/*.yml) must pass, and the rules follow the monitoring-mixins conventions: CamelCase
 * names with one prefix, a severity, summary/description/runbook_url annotations whose runbook anchor
 * exists in docs/alerts.md. Every alert must be shown to fire AND to stay silent by the unit tests,
 * and every recording rule must be checked by one.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { requireBinary } from './support/processes';
import { allRules, PROMTOOL, ROOT, RULE_TESTS_DIR, RULES_FILE } from './support/prometheus';

const RUNBOOK_BASE = 'https://github.com/datastore-exporter/datastore-exporter/blob/main/docs/alerts.md#';

function promtool(args: string[]): string {
  requireBinary(PROMTOOL, 'the Debian package prometheus (promtool)');
  try {
    return execFileSync(PROMTOOL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

const testFiles = readdirSync(RULE_TESTS_DIR)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join(RULE_TESTS_DIR, f));

interface UnitTestFile {
  tests: {
    name?: string;
    alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[];
    promql_expr_test?: { expr: string; exp_samples?: unknown[] }[];
  }[];
}
const unitTests = testFiles.flatMap((f) => (parse(readFileSync(f, 'utf8')) as UnitTestFile).tests);

/** GitHub's anchor for a Markdown heading. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}

describe('promtool', () => {
  test('check rules accepts the rules file', () => {
    const out = promtool(['check', 'rules', RULES_FILE]);
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
  });

  test('test rules: every unit test in rules/tests passes', () => {
    expect(testFiles.length).toBeGreaterThanOrEqual(3);
    const out = promtool(['test', 'rules', ...testFiles]);
    expect(out).not.toMatch(/FAILED/);
    expect(out.match(/SUCCESS/g)).toHaveLength(testFiles.length);
  });
});

describe('conventions', () => {
  const rules = allRules();
  const alerts = rules.filter((r) => r.alert);
  const records = rules.filter((r) => r.record);
  const alertNames = [...new Set(alerts.map((a) => a.alert!))];
  const docs = readFileSync(join(ROOT, 'docs', 'alerts.md'), 'utf8');
  const headings = new Set([...docs.matchAll(/^#{2,4} (.+)$/gm)].map((m) => anchor(m[1]!)));

  test('the alerts issue 5 asks for all exist', () => {
    expect(alertNames.sort()).toEqual(
      [
        'DatastoreClusterIdShared',
        'DatastoreCollectionStale',
        'DatastoreDown',
        'DatastoreExporterDown',
        'DatastoreMissingPrimary',
        'DatastoreMultiplePrimaries',
        'DatastorePrimaryChanged',
        'DatastoreReplicationLagHigh',
      ].sort(),
    );
    // Lag has a warning and a critical threshold.
    expect(
      alerts.filter((a) => a.alert === 'DatastoreReplicationLagHigh').map((a) => a.labels!.severity),
    ).toEqual(['warning', 'critical']);
  });

  test.each(alerts.map((a) => [`${a.alert} (${a.labels?.severity})`, a]))(
    '%s follows the conventions',
    (_n, a) => {
      expect(a.alert).toMatch(/^Datastore[A-Z][A-Za-z]+$/);
      expect(['critical', 'warning', 'info']).toContain(a.labels?.severity);
      expect(a.annotations?.summary).toMatch(/^[A-Z].+\.$/);
      // The description names what matters: the cluster, the shard or the node.
      expect(a.annotations?.description).toMatch(/\{\{ \$labels\.(cluster_id|instance)/);
      const url = a.annotations?.runbook_url ?? '';
      expect(url.startsWith(RUNBOOK_BASE)).toBe(true);
      expect(url.slice(RUNBOOK_BASE.length)).toBe(a.alert!.toLowerCase());
      expect(headings).toContain(url.slice(RUNBOOK_BASE.length));
      // Paging alerts wait; only the informational one fires at once.
      if (a.labels?.severity !== 'info') expect(a.for).toMatch(/^\d+m$/);
    },
  );

  test.each(alertNames)('%s is unit-tested firing and silent', (name) => {
    const cases = unitTests.flatMap((t) => t.alert_rule_test ?? []).filter((c) => c.alertname === name);
    expect(cases.some((c) => (c.exp_alerts ?? []).length > 0)).toBe(true);
    expect(cases.some((c) => (c.exp_alerts ?? []).length === 0)).toBe(true);
  });

  test.each(records.map((r) => r.record!))('recording rule %s is unit-tested', (name) => {
    const exprs = unitTests.flatMap((t) => t.promql_expr_test ?? []).map((c) => c.expr);
    expect(exprs).toContain(name);
    expect(name).toMatch(/^[a-z_]+:[a-z_]+(:[a-z_]+)?$/);
  });

  test('docs/alerts.md lists every alert in its table', () => {
    for (const name of alertNames)
      expect(docs).toMatch(new RegExp(`^\\| \\[${name}\\]\\(#${name.toLowerCase()}\\)`, 'm'));
  });
});
