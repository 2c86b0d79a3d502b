/**
 * The alert and recording rules: `promtool check rules` and `promtool test rules` (the unit tests in
 * rules/tests/*.yml) must pass, and the rules follow the monitoring-mixins conventions: CamelCase
 * names with one prefix, a severity, summary/description/runbook_url annotations whose runbook anchor
 * exists in docs/alerts.md. Every alert must be shown to fire AND to stay silent by the unit tests,
 * and every recording rule must be checked by one. The rules file is generated from the mixin in
 * scripts/rules/ (UPDATE_RULES=1 rewrites it from the default config).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEFAULT_CONFIG, mergeConfig } from '../scripts/rules/config';
import { renderRules } from '../scripts/rules/render';
import { buildRules } from '../scripts/rules/rules';
import { requireBinary, tempDir } from './support/processes';
import {
  allRules,
  loadRules,
  PROMTOOL,
  ROOT,
  RULE_TESTS_DIR,
  RULES_FILE,
  selectorsOf,
} from './support/prometheus';

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

if (process.env.UPDATE_RULES === '1') writeFileSync(RULES_FILE, renderRules(DEFAULT_CONFIG));

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
        'DatastoreHeartbeatStopped',
        'DatastoreMissingPrimary',
        'DatastoreMultiplePrimaries',
        'DatastorePrimaryChanged',
        'DatastorePrimaryUnobserved',
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

describe('the rules are a mixin: generated from a config block', () => {
  const TEST_CONFIG = {
    selector: 'env="prod"',
    exporterTargetSelector: 'job="dsx"',
    for: { missingPrimary: '3m' },
    lag: { warning: { thresholdSeconds: 45 } },
  };

  test('the committed rules file is exactly the render of the default config', () => {
    const hint = 'run UPDATE_RULES=1 npx jest test/rules.test.ts (or npm run rules:render -- --out ...)';
    expect({ same: readFileSync(RULES_FILE, 'utf8') === renderRules(DEFAULT_CONFIG), hint }).toEqual({
      same: true,
      hint,
    });
  });

  test.each([
    ['the default config', DEFAULT_CONFIG],
    ['a user config', mergeConfig(TEST_CONFIG)],
  ])('parsing the render of %s gives back exactly the rules built from it', (_name, config) => {
    const built = buildRules(config).map((g) => ({
      name: g.name,
      rules: g.rules.map(({ comment: _comment, ...rule }) => ({ ...rule, expr: `${rule.expr}\n` })),
    }));
    expect(parse(renderRules(config))).toEqual({ groups: built });
  });

  test('a user config reaches every selector, threshold and for:, and promtool accepts the result', () => {
    const config = mergeConfig(TEST_CONFIG);
    const dir = tempDir('rules-mixin');
    try {
      const file = join(dir.path, 'variant.yml');
      writeFileSync(file, renderRules(config));
      expect(promtool(['check', 'rules', file])).toMatch(/SUCCESS/);
      const rules = allRules(loadRules(file));
      for (const rule of rules) {
        const { selectors, bare } = selectorsOf(rule.expr);
        // Bare names are the recording rules' own outputs, derived from selected series.
        expect(bare.filter((name) => !name.includes(':'))).toEqual([]);
        for (const sel of selectors.filter((x) => !x.metric.includes(':')))
          expect(sel.matchers).toContainEqual({ name: 'env', op: '=', value: 'prod' });
      }
      const exporterDown = rules.find((r) => r.alert === 'DatastoreExporterDown')!;
      expect(exporterDown.expr).toContain('up{env="prod", job="dsx"}');
      const missing = rules.find((r) => r.alert === 'DatastoreMissingPrimary')!;
      expect(missing.for).toBe('3m');
      expect(missing.annotations!.description).toContain('primary for 3 minutes');
      const lag = rules.filter((r) => r.alert === 'DatastoreReplicationLagHigh');
      expect(lag.map((r) => r.annotations!.summary)).toEqual([
        'A replica is more than 45 seconds behind its primary and not catching up.',
        'A replica is more than 5 minutes behind its primary and not catching up.',
      ]);
      expect(lag[0]!.expr).toContain('cluster_shard_node:datastore_replica_staleness_seconds > 45');
    } finally {
      dir.remove();
    }
  });

  test('a config with a typo, a wrong type or a bad duration is refused, naming the setting', () => {
    expect(() => mergeConfig({ for: { missingPrimry: '1m' } })).toThrow('for.missingPrimry: unknown setting');
    expect(() => mergeConfig({ lag: { warning: { thresholdSeconds: '30' } } })).toThrow(
      'lag.warning.thresholdSeconds: expected a number',
    );
    expect(() => mergeConfig({ shardMemory: '10 minutes' })).toThrow(
      'shardMemory: "10 minutes" is not a duration',
    );
    expect(() => mergeConfig({ leaderAwareDatastores: 'etcd' })).toThrow(
      'leaderAwareDatastores: expected a list',
    );
    // A partial config keeps every other default.
    expect(mergeConfig({ for: { down: '5m' } })).toEqual({
      ...DEFAULT_CONFIG,
      for: { ...DEFAULT_CONFIG.for, down: '5m' },
    });
  });

  test('npm run rules:render renders a user config file; a bad one is one line on stderr and exit 2', () => {
    const dir = tempDir('rules-render');
    try {
      const good = join(dir.path, 'good.yml');
      const bad = join(dir.path, 'bad.json');
      const out = join(dir.path, 'out.yml');
      writeFileSync(good, 'selector: env="prod"\nfor:\n  missingPrimary: 3m\n');
      writeFileSync(bad, JSON.stringify({ for: { missingPrimry: '1m' } }));
      const run = (args: string[]) =>
        spawnSync('npm', ['run', '-s', 'rules:render', '--', ...args], { cwd: ROOT, encoding: 'utf8' });
      const ok = run(['--config', good, '--out', out]);
      expect(ok.status).toBe(0);
      expect(readFileSync(out, 'utf8')).toBe(renderRules(mergeConfig(parse(readFileSync(good, 'utf8')))));
      const failed = run(['--config', bad]);
      expect(failed.status).toBe(2);
      expect(failed.stderr.trim().split('\n')).toEqual(['rules:render: for.missingPrimry: unknown setting']);
      expect(failed.stdout).toBe('');
    } finally {
      dir.remove();
    }
  }, 60000);
});
