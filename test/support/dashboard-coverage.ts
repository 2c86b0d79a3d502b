/**
 * "Every dashboard query returns data for every datastore that has its metrics", on a real Prometheus
 * (typically one without the recording rules, as a dashboard imported alone sees it): evaluate every
 * query of the committed dashboards per job at a few checkpoints, noting which metrics each job
 * exports at that moment; then check that each query returned data, at one checkpoint at least, for
 * each job that exported one of the query's subject metrics at one checkpoint at least.
 */
import {
  dashboardQueries,
  loadDashboards,
  selectorsOf,
  substitute,
  type PrometheusSample,
  type RunningPrometheus,
} from './prometheus';

export interface DashboardRun {
  /** "<dashboard uid> / <panel title> <refId>". */
  id: string;
  expr: string;
  /** Per job ("*" = All jobs): the series returned. */
  byJob: Map<string, PrometheusSample[]>;
  /** Per job: the metric names it exported at that checkpoint. */
  present: Map<string, Set<string>>;
}

/** Metrics that only give a query its context (labels, joins, gates), not its subject. */
const CONTEXT = new Set(['datastore_node_info', 'up', 'datastore_shard_role', 'datastore_up']);

/** Every dashboard query, for each job and for All, with the variables and macros substituted. */
export async function evaluateDashboards(
  prometheus: RunningPrometheus,
  jobs: string[],
  macros: Record<string, string>,
): Promise<DashboardRun[]> {
  const runs: DashboardRun[] = [];
  const present = new Map<string, Set<string>>();
  // Every query of a checkpoint is evaluated at the same instant (a second ago, so its scrapes are
  // stored): on a loaded machine the queries take seconds, and a series that vanished meanwhile (a
  // failed collection) must not count as a query that returns nothing while its metric is present.
  const at = Date.now() / 1000 - 1;
  for (const job of jobs) {
    const names = await prometheus.query(`count by (__name__) ({job="${job}"})`, at);
    present.set(job, new Set(names.map((n) => n.metric.__name__!)));
  }
  for (const { json } of loadDashboards()) {
    for (const q of dashboardQueries(json)) {
      const byJob = new Map<string, PrometheusSample[]>();
      for (const job of ['*', ...jobs]) {
        const vars = {
          job: job === '*' ? ('All' as const) : [job],
          cluster_id: 'All' as const,
          instance: 'All' as const,
        };
        byJob.set(job, await prometheus.query(substitute(q.expr, vars, macros), at));
      }
      runs.push({ id: `${json.uid} / ${q.panel} ${q.refId}`, expr: q.expr, byJob, present });
    }
  }
  return runs;
}

/**
 * The queries that returned no data at any checkpoint for a job that has their metrics (a query
 * scoped with datastore=~"..." only counts for those datastores), and a per-query summary of the
 * datastores that had data.
 */
export function missingDashboardData(
  checkpoints: DashboardRun[][],
  jobDatastore: Record<string, string>,
): { missing: string[]; summary: string[] } {
  const missing: string[] = [];
  const summary: string[] = [];
  for (const r of checkpoints[0]!) {
    const metrics = [...new Set(selectorsOf(r.expr).selectors.map((s) => s.metric))];
    const subjects = metrics.filter((m) => !CONTEXT.has(m));
    const scope = /datastore=~"([^"]+)"/.exec(r.expr)?.[1]?.split('|');
    const withData: string[] = [];
    for (const [job, datastore] of Object.entries(jobDatastore)) {
      if (scope && !scope.includes(datastore)) continue;
      const runs = checkpoints.map((run) => run.find((x) => x.id === r.id)!);
      const fed = runs.filter((run) =>
        (subjects.length === 0 ? metrics : subjects).some((m) => run.present.get(job)!.has(m)),
      );
      if (runs.some((run) => run.byJob.get(job)!.length > 0)) withData.push(`${datastore} (${job})`);
      else if (fed.length > 0) missing.push(`${r.id} for ${job}`);
    }
    summary.push(`${r.id}: ${withData.join(', ') || '-'}`);
  }
  return { missing, summary };
}
