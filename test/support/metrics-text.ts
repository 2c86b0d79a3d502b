/** A small parser for the Prometheus text exposition format, for assertions in tests. */
import { MODEL_HELP } from '../../src/http/exposition';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let lm: RegExpExecArray | null;
    while ((lm = re.exec(m[2] ?? '')))
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** Samples of one metric, optionally filtered by labels. */
export function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The single value of a metric with these labels; throws if absent or ambiguous. */
export function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = find(samples, name, labels);
  if (found.length !== 1) {
    throw new Error(`expected one ${name}${JSON.stringify(labels)}, found ${found.length}`);
  }
  return found[0]!.value;
}

/** The metric names that carry the Datastore Model (absent when the datastore is down). */
/** Every model metric the exporter can emit, from its own list: a new metric is covered at once. */
export const MODEL_METRICS = Object.keys(MODEL_HELP) as (keyof typeof MODEL_HELP)[];

/** The role whose state-set series is 1 for a shard, or undefined. */
export function roleOf(samples: Sample[], shardId: string): string | undefined {
  return find(samples, 'datastore_shard_role', { shard_id: shardId }).find((s) => s.value === 1)?.labels.role;
}
