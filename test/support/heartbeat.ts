/** Measuring heartbeat lag from a running test exporter, shared by the heartbeat test files. */
import type { TestExporter } from './exporter';
import { value } from './metrics-text';
import { sleep } from './processes';

const LAG = 'datastore_shard_replication_lag_seconds';

/** The shard's reported lag once per collection, `n` times (each read right after a collection). */
export async function lagSamples(
  exporter: TestExporter,
  shard: Record<string, string>,
  n: number,
): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    await exporter.nextCollections(1);
    samples.push(value(await exporter.scrape(), LAG, shard));
  }
  return samples;
}

/**
 * For a replica whose replication is paused: the lag read after one collection, then again `waitMs`
 * later, and the wall time between the two reads (what the lag must have gained).
 */
export async function lagGrowth(
  exporter: TestExporter,
  shard: Record<string, string>,
  waitMs = 3000,
): Promise<{ l0: number; l1: number; wall: number }> {
  await exporter.nextCollections(1);
  const [l0] = await lagSamples(exporter, shard, 1);
  const t0 = Date.now();
  await sleep(waitMs);
  const [l1] = await lagSamples(exporter, shard, 1);
  return { l0: l0!, l1: l1!, wall: (Date.now() - t0) / 1000 };
}
