/**
 * An exporter in probe mode (no --target) for the discovery and scale-out tests: started in-process
 * from CLI-style flags, with helpers for GET /discover, GET /probe and its own /metrics.
 */
import request from 'supertest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadServerConfig } from '../../src/config/flags';
import { createLogger } from '../../src/core/logger';
import { startServer, type RunningServer } from '../../src/exporter';
import type { TargetGroup } from '../../src/probe/discovery';
import { parseExposition, type Sample } from './metrics-text';

export interface ProbeModeExporter extends RunningServer {
  logs: string[];
  url: string;
  discover(query: Record<string, string>): Promise<request.Response>;
  /** GET /discover, expecting 200: the target groups. */
  groups(query: Record<string, string>): Promise<TargetGroup[]>;
  probeSamples(query: Record<string, string>): Promise<Sample[]>;
  metrics(): Promise<Sample[]>;
}

/** Writes a probe config file (allowed_targets, auth_modules) into `dir`; returns its path. */
export function writeProbeConfig(
  dir: string,
  config: { allowed_targets?: string[]; auth_modules?: Record<string, unknown> },
  name = 'probe.yml',
): string {
  const file = join(dir, name);
  writeFileSync(file, stringify(config));
  return file;
}

export async function startProbeModeExporter(flags: string[]): Promise<ProbeModeExporter> {
  // --web.listen-address may be given several times (each is listened on): the default only when none is.
  const listen = flags.some((f) => f === '--web.listen-address' || f.startsWith('--web.listen-address='))
    ? []
    : ['--web.listen-address', '127.0.0.1:0'];
  const config = loadServerConfig([...listen, ...flags], {});
  if (typeof config === 'string') throw new Error(`unexpected ${config}`);
  const logs: string[] = [];
  const running = await startServer(
    config,
    createLogger('debug', 'logfmt', (l) => logs.push(l)),
    { processMetrics: false },
  );
  const discover = async (query: Record<string, string>) =>
    await request(running.server).get('/discover').query(query);
  return {
    ...running,
    logs,
    url: `http://127.0.0.1:${running.port}`,
    discover,
    async groups(query) {
      const res = await discover(query);
      if (res.status !== 200) throw new Error(`/discover answered ${res.status}: ${res.text}`);
      return res.body as TargetGroup[];
    },
    async probeSamples(query) {
      const res = await request(running.server).get('/probe').query(query);
      if (res.status !== 200) throw new Error(`/probe answered ${res.status}: ${res.text}`);
      return parseExposition(res.text);
    },
    async metrics() {
      return parseExposition((await request(running.server).get('/metrics').expect(200)).text);
    },
  };
}

/** The member URLs of an answer, sorted. */
export function targetsOf(groups: TargetGroup[]): string[] {
  return groups.flatMap((g) => g.targets).sort();
}

/** member URL -> one of its labels. */
export function labelByTarget(groups: TargetGroup[], label: string): Record<string, string | undefined> {
  return Object.fromEntries(groups.map((g) => [g.targets[0]!, g.labels[label]]));
}
