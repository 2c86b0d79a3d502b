/**
 * What the Helm chart holds that is generated from elsewhere in the repository, so that
 * `npm run sync-helm` (sync.ts) writes it and test/helm-chart.test.ts fails when the committed chart
 * differs:
 *  - files/: byte-identical copies of the alert rules and the dashboards (Helm reads only files inside
 *    the chart, .Files.Get);
 *  - values.schema.json: the URL schemes its patterns accept, from the driver registry;
 *  - Chart.yaml: the keywords, one per datastore of the driver registry.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DRIVERS, supportedSchemes } from '../../src/drivers/registry';

export const CHART_DIR = join('helm', 'datastore-exporter');
export const CHART_DASHBOARDS_DIR = join(CHART_DIR, 'files', 'dashboards');

/** Chart keywords that are not datastores: first the kind of chart, last what it watches. */
const KEYWORDS_BEFORE = ['prometheus', 'exporter', 'monitoring'];
const KEYWORDS_AFTER = ['replication'];

/** A scheme alternation at the start of a URL pattern: `^(redis|rediss|...)://`. */
const SCHEME_GROUP = /\^\((?:[a-z]+\|)*[a-z]+\):\/\//g;

/** Replaces every scheme alternation in the schema's URL patterns with the registry's schemes. */
export function withRegistrySchemes(schemaText: string): string {
  return schemaText.replace(SCHEME_GROUP, `^(${supportedSchemes().join('|')})://`);
}

/** Replaces Chart.yaml's `keywords:` list (a block of `  - word` lines) with the generated one. */
export function withRegistryKeywords(chartYaml: string): string {
  const keywords = [...KEYWORDS_BEFORE, ...DRIVERS.map((d) => d.name), ...KEYWORDS_AFTER];
  const block = /^keywords:\n(?: {2}- .*\n)*/m;
  if (!block.test(chartYaml)) throw new Error(`${CHART_DIR}/Chart.yaml has no keywords: block`);
  return chartYaml.replace(block, `keywords:\n${keywords.map((k) => `  - ${k}\n`).join('')}`);
}

/** Path (relative to the repository root) -> the content the chart must hold there. */
export function generatedChartFiles(root: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const read = (path: string): Buffer => readFileSync(join(root, path));
  files.set(join(CHART_DIR, 'files', 'datastore-exporter.rules.yml'), read('rules/datastore-exporter.rules.yml'));
  for (const f of readdirSync(join(root, 'dashboards')).filter((name) => name.endsWith('.json'))) {
    files.set(join(CHART_DASHBOARDS_DIR, f), read(join('dashboards', f)));
  }
  const schema = join(CHART_DIR, 'values.schema.json');
  files.set(schema, Buffer.from(withRegistrySchemes(read(schema).toString('utf8'))));
  const chart = join(CHART_DIR, 'Chart.yaml');
  files.set(chart, Buffer.from(withRegistryKeywords(read(chart).toString('utf8'))));
  return files;
}
