/**
 * `npm run dashboards`: writes dashboards/*.json from dashboards.ts, and deletes any JSON there that
 * it no longer generates. test/dashboards.test.ts fails while the committed files differ. Run
 * `npm run sync-helm` afterwards: the Helm chart keeps copies.
 */
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildDashboards } from './dashboards';
import { renderDashboard } from './grafana';

const DIR = resolve(__dirname, '..', '..', '..', '..', 'dashboards');
const generated = buildDashboards();
for (const stale of readdirSync(DIR).filter((f) => f.endsWith('.json') && !(f in generated))) {
  rmSync(join(DIR, stale));
}
for (const [file, model] of Object.entries(generated)) writeFileSync(join(DIR, file), renderDashboard(model));
process.stdout.write(`dashboards: wrote ${Object.keys(generated).length} file(s) to dashboards/\n`);
