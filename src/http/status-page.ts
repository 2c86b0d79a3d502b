/**
 * The landing page at `/`: what an operator opens first. A pure function from the exporter's state to
 * HTML, rendered on the server: no JavaScript, readable on a phone, optionally refreshing itself
 * (`?refresh=5`).
 *
 * Every piece of text is escaped: shard ids, roles, versions and error messages come from the
 * datastore (or its error replies) and must never become markup. Error text is already redacted by
 * the collector; the target is the redacted URL. A Kafka broker may lead thousands of partitions, so
 * the shard table is capped (the counts per role still cover every shard) and points at /metrics and
 * the JSON API for the rest.
 */
import type { CollectorState } from '../core/collector';
import type { Role, Shard, Snapshot } from '../core/model';
import type { VersionInfo } from '../core/version';

/** Rows shown in the shard table; beyond, a note says how many were left out and where they are. */
export const MAX_SHARD_ROWS = 200;

/** What the page describes besides the collector's state: fixed at start-up. */
export interface StatusPageContext {
  version: VersionInfo;
  telemetryPath: string;
  /** The JSON API's root (the Replicante agent API). */
  apiRoot: string;
  /** The single target, redacted; undefined when only /probe is served. */
  target?: string;
  /** The driver for the target (e.g. 'redis'). */
  datastore?: string;
  collectIntervalSeconds?: number;
  collectTimeoutMs?: number;
  /** Heartbeat mode's write interval; undefined when heartbeat mode is off. */
  heartbeatIntervalMs?: number;
  /** GET /probe is served. */
  probe: boolean;
}

export interface StatusPageRequest {
  /** The collector's state now; undefined without a --target. */
  state?: CollectorState;
  /** Unix time (seconds), for ages. */
  nowSeconds: number;
  /** Seconds between automatic reloads, already validated; undefined: no reload. */
  refreshSeconds?: number;
  /** Shard rows to show at most (tests lower it). */
  maxShardRows?: number;
}

/** `?refresh=N`: N whole seconds in 1..3600, else no refresh (a bad value is ignored, not an error). */
export function parseRefresh(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,4}$/.test(value)) return undefined;
  const seconds = Number(value);
  return seconds >= 1 && seconds <= 3600 ? seconds : undefined;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Seconds as people read them: 0.004 s -> "4 ms", 75 -> "1m 15s", 90061 -> "1d 1h". */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  const sign = seconds < 0 ? '-' : '';
  const s = Math.abs(seconds);
  if (s < 1) return `${sign}${Math.round(s * 1000)} ms`;
  if (s < 60) return `${sign}${Number(s.toFixed(s < 10 ? 2 : 1))} s`;
  const whole = Math.round(s);
  const [d, h, m, sec] = [
    Math.floor(whole / 86400),
    Math.floor((whole % 86400) / 3600),
    Math.floor((whole % 3600) / 60),
    whole % 60,
  ];
  if (d > 0) return `${sign}${d}d ${h}h`;
  if (h > 0) return `${sign}${h}h ${m}m`;
  return `${sign}${m}m ${sec}s`;
}

function isoTime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** "2026-12-01T10:00:00Z (3 s ago)", or a dash. */
function timeAndAge(unixSeconds: number | undefined, nowSeconds: number): string {
  if (unixSeconds === undefined || unixSeconds <= 0) return '—';
  return `${isoTime(unixSeconds)} (${formatSeconds(Math.max(0, nowSeconds - unixSeconds))} ago)`;
}

const e = escapeHtml;

/** A definition list: label -> already-escaped HTML. */
function facts(rows: [string, string][]): string {
  return `<dl>${rows.map(([k, v]) => `<dt>${e(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

function code(text: string): string {
  return `<code>${e(text)}</code>`;
}

type Health = 'up' | 'down' | 'starting' | 'probe-only';

function health(state: CollectorState | undefined): Health {
  if (!state) return 'probe-only';
  if (!state.attempted) return 'starting';
  return state.up ? 'up' : 'down';
}

const HEALTH_TEXT: Record<Health, string> = {
  up: 'UP',
  down: 'DOWN',
  starting: 'STARTING',
  'probe-only': 'PROBE ONLY',
};

const COLUMNS = ['Shard', 'Role', 'Lag', 'Last write', 'Commit offset', 'Heartbeat age'];

function shardRow(shard: Shard, snapshot: Snapshot, nowSeconds: number, heartbeat: boolean): string {
  const native = shard.nativeRole && shard.nativeRole !== shard.role ? ` (${e(shard.nativeRole)})` : '';
  const lag = shard.lagSeconds === undefined ? '—' : e(formatSeconds(shard.lagSeconds));
  const lastOp =
    shard.lastOperationTimestampSeconds === undefined
      ? '—'
      : e(formatSeconds(Math.max(0, snapshot.collectedAtSeconds - shard.lastOperationTimestampSeconds)));
  const epoch =
    shard.commitOffset?.epoch !== undefined
      ? ` <span class="unit">epoch ${e(String(shard.commitOffset.epoch))}</span>`
      : '';
  const offset = shard.commitOffset
    ? `${e(String(shard.commitOffset.value))} <span class="unit">${e(shard.commitOffset.unit)}</span>${epoch}`
    : '—';
  // data-label: the column name, shown beside each value when a phone stacks the row (see STYLE).
  const cell = (column: number, cls: string, html: string): string =>
    `<td class="${cls}" data-label="${e(COLUMNS[column]!)}">${html}</td>`;
  const cells = [
    cell(
      0,
      'shard',
      `${e(shard.id)}${shard.keyRanges ? ` <span class="unit">key ranges ${e(shard.keyRanges)}</span>` : ''}`,
    ),
    cell(1, `role role-${e(shard.role)}`, `${e(shard.role)}${native}`),
    cell(2, 'lag', lag),
    cell(3, 'last-op', lastOp),
    cell(4, 'offset', offset),
  ];
  if (heartbeat) {
    const age =
      shard.heartbeatTimestampSeconds === undefined
        ? 'none read'
        : e(formatSeconds(Math.max(0, nowSeconds - shard.heartbeatTimestampSeconds)));
    cells.push(cell(5, 'heartbeat', age));
  }
  return `<tr data-shard-id="${e(shard.id)}" data-role="${e(shard.role)}">${cells.join('')}</tr>`;
}

function shardsSection(
  snapshot: Snapshot,
  ctx: StatusPageContext,
  nowSeconds: number,
  maxRows: number,
): string {
  const heartbeat = ctx.heartbeatIntervalMs !== undefined;
  const counts = new Map<Role, number>();
  for (const s of snapshot.shards) counts.set(s.role, (counts.get(s.role) ?? 0) + 1);
  const summary = [...counts]
    .map(([role, n]) => `<span class="count role-${e(role)}">${e(role)}: ${n}</span>`)
    .join(' ');
  const shown = snapshot.shards.slice(0, maxRows);
  const omitted = snapshot.shards.length - shown.length;
  const note =
    omitted > 0
      ? `<p class="note" id="shards-capped">Showing the first ${shown.length} of ${snapshot.shards.length} shards. ` +
        `Every shard is in <a href="${e(ctx.telemetryPath)}">${e(ctx.telemetryPath)}</a> and ` +
        `<a href="${e(ctx.apiRoot)}/shards">${e(ctx.apiRoot)}/shards</a>.</p>`
      : '';
  const head = COLUMNS.slice(0, heartbeat ? 6 : 5);
  return (
    `<section id="shards"><h2>Shards (${snapshot.shards.length})</h2>` +
    (summary ? `<p class="counts">${summary}</p>` : '') +
    `<div class="scroll"><table><thead><tr>${head.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>` +
    shown.map((s) => shardRow(s, snapshot, nowSeconds, heartbeat)).join('') +
    `</tbody></table></div>${note}` +
    `<p class="hint">Lag: seconds behind the primary, where the datastore can tell (— when it cannot). ` +
    `Last write: how long before this collection the shard last saw a write.</p></section>`
  );
}

function collectionSection(state: CollectorState, ctx: StatusPageContext, nowSeconds: number): string {
  const rows: [string, string][] = [
    [
      'Result',
      !state.attempted
        ? 'the first collection has not finished yet'
        : state.up
          ? '<span class="ok">succeeded</span>'
          : '<span class="bad">failed</span>',
    ],
  ];
  if (state.attempted) {
    rows.push(['At', e(timeAndAge(state.lastAttemptSeconds, nowSeconds))]);
    rows.push(['Duration', e(formatSeconds(state.lastDurationSeconds))]);
  }
  if (!state.up && state.lastError) rows.push(['Error', `<span class="error">${e(state.lastError)}</span>`]);
  rows.push(['Last success', e(timeAndAge(state.lastSuccessSeconds, nowSeconds))]);
  rows.push(['Failed collections', e(String(state.errorsTotal))]);
  if (ctx.collectIntervalSeconds !== undefined) {
    const timeout =
      ctx.collectTimeoutMs !== undefined ? `, timeout ${formatSeconds(ctx.collectTimeoutMs / 1000)}` : '';
    rows.push(['Schedule', e(`every ${formatSeconds(ctx.collectIntervalSeconds)}${timeout}`)]);
  }
  return `<section id="collection"><h2>Last collection</h2>${facts(rows)}</section>`;
}

/** Why the cluster id is what it is: a fallback shared by unrelated clusters deserves a warning. */
const CLUSTER_ID_SOURCE: Record<Snapshot['clusterIdSource'], string> = {
  flag: 'from --cluster-id',
  datastore: 'the datastore’s own',
  fallback: 'a fallback: set --cluster-id',
};

function nodeSection(snapshot: Snapshot): string {
  const rows: [string, string][] = [
    ['Datastore', e(`${snapshot.datastore} ${snapshot.version}`)],
    ['Node id', code(snapshot.nodeId)],
    ['Cluster id', `${code(snapshot.clusterId)} ${e(`(${CLUSTER_ID_SOURCE[snapshot.clusterIdSource]})`)}`],
  ];
  if (snapshot.replicationGroup) rows.push(['Replication group', code(snapshot.replicationGroup)]);
  if (snapshot.clusterDisplayName) rows.push(['Cluster name', e(snapshot.clusterDisplayName)]);
  const perf = snapshot.performance;
  const counters = [
    perf.clientsConnected !== undefined ? `${perf.clientsConnected} clients` : undefined,
    perf.readsTotal !== undefined ? `${perf.readsTotal} reads` : undefined,
    perf.writesTotal !== undefined ? `${perf.writesTotal} writes` : undefined,
  ].filter(Boolean);
  if (counters.length) rows.push(['Activity', e(counters.join(', '))]);
  return `<section id="node"><h2>Node</h2>${facts(rows)}</section>`;
}

function heartbeatText(ctx: StatusPageContext): string {
  return ctx.heartbeatIntervalMs === undefined
    ? 'off (lag comes from the datastore’s own replication state)'
    : `on: the primary writes every ${formatSeconds(ctx.heartbeatIntervalMs / 1000)}; ` +
        'each shard’s heartbeat age is in the table';
}

function linksSection(ctx: StatusPageContext): string {
  const links: [string, string][] = [
    [ctx.telemetryPath, 'Metrics'],
    [`${ctx.apiRoot}/info/agent`, 'Agent info (JSON)'],
    [`${ctx.apiRoot}/info/datastore`, 'Datastore info (JSON)'],
    [`${ctx.apiRoot}/shards`, 'Shards (JSON)'],
    ['/healthz', 'Health'],
    ['/ready', 'Readiness'],
  ];
  const items = links.map(([href, text]) => `<li><a href="${e(href)}">${e(text)}</a></li>`);
  if (ctx.probe) {
    items.push(`<li><code>/probe?target=&lt;url&gt;</code> (multi-target probing)</li>`);
    items.push(
      `<li><code>/discover?target=&lt;seed url&gt;</code> (a cluster's members, for Prometheus)</li>`,
    );
  }
  // The exporter knows no public URL of its documentation: name where it is.
  const docs =
    'README.md and docs/ of the datastore-exporter sources (docs/status-page.md explains this page, ' +
    'docs/configuration.md every flag); <code>datastore-exporter --help</code> lists the flags too';
  return `<section id="links"><h2>Links</h2><ul>${items.join('')}</ul><p>Documentation: ${docs}</p></section>`;
}

const STYLE = `
:root{color-scheme:light dark;--ok:#1a7f37;--bad:#cf222e;--muted:#6e7781}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:64rem;padding:.75rem;line-height:1.4}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;color:#fff;font-weight:600;font-size:.9rem;vertical-align:middle}
.badge.up{background:var(--ok)}.badge.down{background:var(--bad)}.badge.starting,.badge.probe-only{background:var(--muted)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:0}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #8884;white-space:nowrap}
td.shard{white-space:normal;overflow-wrap:anywhere}
.role-primary{color:var(--ok);font-weight:600}.role-unknown{color:var(--muted)}
.ok{color:var(--ok);font-weight:600}.bad,.error{color:var(--bad)}.error{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
.count{margin-right:.8rem}.unit,.hint,.note,footer{color:var(--muted);font-size:.85rem}
code{overflow-wrap:anywhere}
@media (max-width:40rem){body{padding:.5rem}
thead{display:none}tr{display:block;border-bottom:1px solid #8884;padding:.3rem 0}
td{display:flex;gap:.8rem;border:0;padding:.05rem 0;white-space:normal}
td::before{content:attr(data-label);color:var(--muted);font-weight:400;min-width:7.5rem}}
`;

export function renderStatusPage(ctx: StatusPageContext, req: StatusPageRequest): string {
  const { state, nowSeconds } = req;
  const status = health(state);
  const snapshot = state?.snapshot ?? undefined;
  const v = ctx.version;
  const exporterRows: [string, string][] = [
    ['Version', e(v.version)],
    ['Revision', code(v.revision)],
    ['Branch', e(v.branch)],
    ['Node.js', e(v.nodejsVersion)],
  ];
  const targetRows: [string, string][] = ctx.target
    ? [
        ['URL', code(ctx.target)],
        ['Driver', e(ctx.datastore ?? 'unknown')],
        ['Heartbeat', e(heartbeatText(ctx))],
      ]
    : [['URL', 'none: only <code>/probe</code> is served']];
  const refresh = req.refreshSeconds;
  const refreshMeta = refresh ? `<meta http-equiv="refresh" content="${refresh}">` : '';
  const refreshLink = refresh
    ? `Refreshing every ${refresh} s · <a href="/">stop</a>`
    : `<a href="/?refresh=5">Refresh every 5 s</a>`;
  const body = [
    `<header><h1>datastore-exporter <span class="badge ${status}" id="health">${HEALTH_TEXT[status]}</span></h1>`,
    `<p class="note">${e(isoTime(nowSeconds))} · ${refreshLink}</p></header>`,
    `<section id="target"><h2>Target</h2>${facts(targetRows)}</section>`,
    state ? collectionSection(state, ctx, nowSeconds) : '',
    // Roles first: on a phone, what an operator opened the page for is above the fold.
    snapshot ? shardsSection(snapshot, ctx, nowSeconds, req.maxShardRows ?? MAX_SHARD_ROWS) : '',
    snapshot ? nodeSection(snapshot) : '',
    state && !snapshot && state.attempted
      ? '<p class="note">No node or shard data while collections fail: the exporter never shows stale numbers.</p>'
      : '',
    `<section id="exporter"><h2>Exporter</h2>${facts(exporterRows)}</section>`,
    linksSection(ctx),
  ];
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    refreshMeta +
    `<title>${e(`${HEALTH_TEXT[status]} · datastore-exporter${ctx.target ? ` · ${ctx.target}` : ''}`)}</title>` +
    `<style>${STYLE}</style></head><body>${body.join('')}</body></html>\n`
  );
}
