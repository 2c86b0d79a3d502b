/**
 * `npm run sync-helm`: writes what the Helm chart copies or derives (chart-files.ts) and deletes
 * dashboard copies whose source is gone. Run after changing rules/, dashboards/ or the driver
 * registry; test/helm-chart.test.ts fails until then.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CHART_DASHBOARDS_DIR, generatedChartFiles } from './chart-files';

const ROOT = resolve(__dirname, '..', '..', '..', '..');
const files = generatedChartFiles(ROOT);
mkdirSync(join(ROOT, CHART_DASHBOARDS_DIR), { recursive: true });
for (const f of readdirSync(join(ROOT, CHART_DASHBOARDS_DIR))) {
  if (!files.has(join(CHART_DASHBOARDS_DIR, f))) rmSync(join(ROOT, CHART_DASHBOARDS_DIR, f));
}
for (const [path, content] of files) writeFileSync(join(ROOT, path), content);
process.stdout.write(`sync-helm: wrote ${files.size} file(s) under helm/\n`);
