/** Runs Debian's promtool (package `prometheus`) on exposition text; a missing promtool fails the test. */
import { spawnSync } from 'node:child_process';
import { requireBinary } from './processes';

export const PROMTOOL = '/usr/bin/promtool';

/** `promtool check metrics` on the text; returns its combined output and exit status. */
export function promtoolCheckMetrics(text: string): { status: number | null; output: string } {
  requireBinary(PROMTOOL, 'the Debian package prometheus');
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
