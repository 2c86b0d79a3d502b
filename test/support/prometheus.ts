/**
 * A real Prometheus (Debian's /usr/bin/prometheus) for tests, on a free loopback port with a temporary
 * TSDB, plus the helpers the rule and dashboard tests share: reading the rules file, listing every
 * dashboard query, substituting Grafana variables and finding the selectors of a PromQL expression.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { freePort, requireBinary, startProcess, tempDir, waitFor, type ServerProcess } from './processes';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';
export const ROOT = join(__dirname, '..', '..');
export const RULES_FILE = join(ROOT, 'rules', 'datastore-exporter.rules.yml');
export const RULE_TESTS_DIR = join(ROOT, 'rules', 'tests');
export const DASHBOARDS_DIR = join(ROOT, 'dashboards');

// ---------------------------------------------------------------------------------------------------
// Rules

export interface RuleNode {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleFile {
  groups: { name: string; interval?: string; rules: RuleNode[] }[];
}

export function loadRules(path = RULES_FILE): RuleFile {
  return parse(readFileSync(path, 'utf8')) as RuleFile;
}

export function allRules(file: RuleFile = loadRules()): RuleNode[] {
  return file.groups.flatMap((g) => g.rules);
}

// ---------------------------------------------------------------------------------------------------
// Dashboards

/* eslint-disable @typescript-eslint/no-explicit-any -- dashboard JSON is checked field by field */
export type DashboardJson = Record<string, any>;

export function loadDashboards(): { file: string; json: DashboardJson }[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, json: JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) }));
}

/** Every panel with queries, rows' nested panels included. */
export function panelsOf(dashboard: DashboardJson): DashboardJson[] {
  const out: DashboardJson[] = [];
  for (const p of dashboard.panels ?? []) {
    if (p.type === 'row') out.push(...(p.panels ?? []));
    else out.push(p);
  }
  return out;
}

export interface DashboardQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
  instant: boolean;
}

export function dashboardQueries(dashboard: DashboardJson): DashboardQuery[] {
  return panelsOf(dashboard).flatMap((p) =>
    (p.targets ?? []).map((t: DashboardJson) => ({
      dashboard: dashboard.uid,
      panel: p.title,
      refId: t.refId,
      expr: t.expr,
      instant: t.instant === true,
    })),
  );
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * Escapes a multi-value variable's value the way Grafana's Prometheus datasource does (regex special
 * characters escaped for the regex AND for the PromQL string: 127.0.0.1 -> 127\\.0\\.0\\.1).
 */
export function grafanaRegexEscape(value: string): string {
  return value.replace(/\\/g, '\\\\\\\\').replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&');
}

/**
 * Substitutes dashboard variables like Grafana does for a multi-value variable: one value verbatim
 * (escaped), several as (a|b), All as the variable's allValue. Time macros and single-value
 * variables (the $lookback duration) get fixed values.
 */
export function substitute(
  expr: string,
  vars: Record<string, string[] | 'All'>,
  macros: Record<string, string> = { __rate_interval: '5s', __interval: '1s', __range: '2m', lookback: '1h' },
): string {
  let out = expr;
  for (const [name, value] of Object.entries(macros)) out = out.split(`$${name}`).join(value);
  for (const [name, values] of Object.entries(vars)) {
    const text =
      values === 'All'
        ? '.+'
        : values.length === 1
          ? grafanaRegexEscape(values[0]!)
          : `(${values.map(grafanaRegexEscape).join('|')})`;
    out = out.split(`\${${name}}`).join(text).split(`$${name}`).join(text);
  }
  // $1, $2... are label_replace's capture groups, not variables.
  if (/\$[A-Za-z_{]/.test(out)) throw new Error(`unsubstituted variable left in: ${out}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// A small PromQL reader: enough to find selectors and ranges for lint checks (promtool and the real
// Prometheus parse every expression for real in the other tests).

export interface Selector {
  metric: string;
  matchers: { name: string; op: string; value: string }[];
  /** Text just before the selector, to see which function it is an argument of. */
  before: string;
  /** The range after it, e.g. "$__rate_interval", if any. */
  range?: string;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'group_left', 'group_right', 'SELECTOR']);

export function selectorsOf(expr: string): { selectors: Selector[]; bare: string[] } {
  const selectors: Selector[] = [];
  const re = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}(\s*\[([^\]]+)\])?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(expr))) {
    const matchers: Selector['matchers'] = [];
    const mre = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;
    let mm: RegExpExecArray | null;
    while ((mm = mre.exec(m[2]!))) matchers.push({ name: mm[1]!, op: mm[2]!, value: mm[3]! });
    selectors.push({ metric: m[1]!, matchers, before: expr.slice(0, m.index), range: m[4]?.trim() });
  }
  // Whatever identifier is left once selectors, label lists, ranges, function names and numbers are
  // removed is a metric selected without any matcher.
  const rest = expr
    .replace(re, ' SELECTOR ')
    // String arguments (label_replace's labels and regexes) name no metric.
    .replace(/"(?:[^"\\]|\\.)*"/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(/g, '(')
    .replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, ' ');
  const bare = (rest.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? []).filter((w) => !KEYWORDS.has(w));
  return { selectors, bare };
}

// ---------------------------------------------------------------------------------------------------
// The Prometheus server

export interface PrometheusSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface RunningPrometheus {
  url: string;
  process: ServerProcess;
  /** Instant query; throws on a query error (a broken expression), returns the vector. */
  /** An instant query, at `at` (Unix seconds) when given, else now. */
  query(expr: string, at?: number): Promise<PrometheusSample[]>;
  /** Label values, as Grafana's label_values(<selector>, <label>) asks for them. */
  labelValues(label: string, match: string): Promise<string[]>;
  alerts(): Promise<PrometheusAlert[]>;
  targets(): Promise<{ scrapeUrl: string; health: string; labels: Record<string, string> }[]>;
  stop(): Promise<void>;
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${url}: ${body.error ?? res.status}`);
  return body.data;
}

export interface PrometheusOptions {
  /** scrape_configs entries: job name -> targets (host:port). */
  jobs: Record<string, string[]>;
  ruleFiles: string[];
  scrapeInterval?: string;
  evaluationInterval?: string;
}

/** Starts Prometheus in the foreground and waits until it is ready. */
export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  requireBinary(PROMETHEUS, 'the Debian package prometheus');
  const dir = tempDir('prometheus');
  const port = await freePort();
  const config = {
    global: {
      scrape_interval: opts.scrapeInterval ?? '1s',
      scrape_timeout: '900ms',
      evaluation_interval: opts.evaluationInterval ?? '1s',
    },
    rule_files: opts.ruleFiles,
    scrape_configs: Object.entries(opts.jobs).map(([job, targets]) => ({
      job_name: job,
      static_configs: [{ targets }],
    })),
  };
  const configFile = join(dir.path, 'prometheus.yml');
  // JSON is YAML.
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const process = startProcess(PROMETHEUS, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(dir.path, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    'prometheus ready',
    async () => {
      if (process.exited()) throw new Error(`prometheus exited: ${process.output().slice(-2000)}`);
      const res = await fetch(`${url}/-/ready`).catch(() => undefined);
      return res?.ok;
    },
    20000,
    100,
  );
  return {
    url,
    process,
    async query(expr, at) {
      const time = at === undefined ? '' : `&time=${at}`;
      const data = await api<{ resultType: string; result: PrometheusSample[] }>(
        `${url}/api/v1/query?query=${encodeURIComponent(expr)}${time}`,
      );
      if (data.resultType !== 'vector')
        throw new Error(`expected a vector from ${expr}, got ${data.resultType}`);
      return data.result;
    },
    labelValues: (label, match) =>
      api<string[]>(`${url}/api/v1/label/${label}/values?match[]=${encodeURIComponent(match)}`),
    async alerts() {
      return (await api<{ alerts: PrometheusAlert[] }>(`${url}/api/v1/alerts`)).alerts;
    },
    async targets() {
      return (
        await api<{ activeTargets: { scrapeUrl: string; health: string; labels: Record<string, string> }[] }>(
          `${url}/api/v1/targets`,
        )
      ).activeTargets;
    },
    async stop() {
      await process.stop();
      dir.remove();
    },
  };
}
