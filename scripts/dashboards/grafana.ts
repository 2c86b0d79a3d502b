/**
 * The Grafana JSON model of the dashboards: panels, layout, variables and the dashboard itself, with
 * the conventions every panel gets for free (the templated datasource, a unit and a description,
 * stats and tables as instant queries, time series as range queries). No Grafana SDK: the model is
 * small and stable, and plain objects keep the generated files reviewable.
 */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Every panel and variable reads from the dashboard's datasource variable. */
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** How long a node or shard that stopped reporting stays on the panels ($lookback). */
export const LOOKBACK_OPTIONS = ['1h', '6h', '1d', '7d'];
export const LOOKBACK_DEFAULT = '1d';

/** A value mapping: an exact value, or a range [from, to] (null = open), to a text and a color. */
export type Mapping = { value: number; text: string; color: string } | { from: number | null; to: number | null; text: string; color: string };

export interface Target {
  expr: string;
  legend?: string;
  /** This query's own unit (time series: by query; table: its value column). */
  unit?: string;
  /** Table: the title of this query's value column. */
  column?: string;
  /** Table: value mappings of this query's value column. */
  mappings?: Mapping[];
}

export type PanelKind = 'timeseries' | 'stat' | 'table';

export interface PanelSpec {
  kind: PanelKind;
  title: string;
  description: string;
  unit: string;
  targets: Target[];
  /** Grid width (of 24) and height. */
  w: number;
  h?: number;
  /** Thresholds as [color, from] steps; the first step's `from` is null. */
  thresholds?: [string, number | null][];
  /** Value mappings of the panel's values. */
  mappings?: Mapping[];
  /** Time series: draw steps (for states such as a role). */
  steps?: boolean;
  /** Table: columns to hide (label names). Value columns are named by their target's `column`. */
  hide?: string[];
  /** Table: label columns to rename. */
  rename?: Record<string, string>;
}

export interface RowSpec {
  row: string;
  panels: PanelSpec[];
}

function thresholds(steps: [string, number | null][] = [['green', null]]): Json {
  return { mode: 'absolute', steps: steps.map(([color, value]) => ({ color, value })) };
}

function valueMappings(mappings: Mapping[] | undefined): Json[] {
  if (!mappings) return [];
  const exact = mappings.filter((m): m is Extract<Mapping, { value: number }> => 'value' in m);
  const ranges = mappings.filter((m): m is Extract<Mapping, { from: number | null }> => 'from' in m);
  const out: Json[] = [];
  if (exact.length > 0) {
    const options: Record<string, Json> = {};
    exact.forEach((m, index) => {
      options[String(m.value)] = { text: m.text, color: m.color, index };
    });
    out.push({ type: 'value', options });
  }
  ranges.forEach((m, i) => {
    out.push({
      type: 'range',
      options: { from: m.from, to: m.to, result: { text: m.text, color: m.color, index: exact.length + i } },
    });
  });
  return out;
}

const refId = (index: number): string => String.fromCharCode(65 + index);

function target(t: Target, index: number, kind: PanelKind): Json {
  const base: Record<string, Json> = {
    datasource: DATASOURCE,
    refId: refId(index),
    expr: t.expr,
    legendFormat: t.legend ?? '__auto',
  };
  if (kind === 'timeseries') return { ...base, range: true, instant: false };
  // Stats and tables show the current state: one instant query, no time series to download.
  return { ...base, range: false, instant: true, format: kind === 'table' ? 'table' : 'time_series' };
}

/** Per-query units (and, for tables, column titles and mappings) as field overrides. */
function overrides(spec: PanelSpec): Json[] {
  const out: Json[] = [];
  spec.targets.forEach((t, i) => {
    const properties: Json[] = [];
    if (t.unit) properties.push({ id: 'unit', value: t.unit });
    if (spec.kind === 'table' && t.column) properties.push({ id: 'displayName', value: t.column });
    if (spec.kind === 'table' && t.mappings) properties.push({ id: 'mappings', value: valueMappings(t.mappings) });
    if (properties.length === 0) return;
    const matcher =
      spec.kind === 'table'
        ? { id: 'byName', options: spec.targets.length > 1 ? `Value #${refId(i)}` : 'Value' }
        : { id: 'byFrameRefID', options: refId(i) };
    out.push({ matcher, properties });
  });
  return out;
}

function panel(spec: PanelSpec, id: number, x: number, y: number): Json {
  const h = spec.h ?? 8;
  const common: Record<string, Json> = {
    id,
    type: spec.kind,
    title: spec.title,
    description: spec.description,
    datasource: DATASOURCE,
    gridPos: { h, w: spec.w, x, y },
    targets: spec.targets.map((t, i) => target(t, i, spec.kind)),
  };
  const defaults: Record<string, Json> = {
    unit: spec.unit,
    thresholds: thresholds(spec.thresholds),
    mappings: valueMappings(spec.mappings),
  };
  if (spec.kind === 'timeseries') {
    return {
      ...common,
      fieldConfig: {
        defaults: {
          ...defaults,
          color: { mode: 'palette-classic' },
          custom: {
            drawStyle: 'line',
            lineInterpolation: spec.steps ? 'stepAfter' : 'linear',
            lineWidth: 1,
            fillOpacity: 0,
            showPoints: 'never',
            spanNulls: false,
          },
        },
        overrides: overrides(spec),
      },
      options: {
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    };
  }
  if (spec.kind === 'stat') {
    return {
      ...common,
      fieldConfig: { defaults: { ...defaults, color: { mode: 'thresholds' } }, overrides: overrides(spec) },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'background',
        graphMode: 'none',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'value_and_name',
      },
    };
  }
  // Tables: one row per label set; several queries are merged into one row per shard or node.
  const transformations: Json[] = [];
  if (spec.targets.length > 1) transformations.push({ id: 'merge', options: {} });
  transformations.push({
    id: 'organize',
    options: {
      excludeByName: Object.fromEntries(['Time', ...(spec.hide ?? [])].map((c) => [c, true])),
      renameByName: spec.rename ?? {},
    },
  });
  return {
    ...common,
    fieldConfig: {
      defaults: { ...defaults, custom: { cellOptions: { type: 'color-text' } } },
      overrides: overrides(spec),
    },
    options: { showHeader: true, cellHeight: 'sm' },
    transformations,
  };
}

/** Lays rows out top to bottom, panels left to right, wrapping at 24 columns. */
function layout(rows: RowSpec[]): Json[] {
  const out: Json[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    out.push({
      id: id++,
      type: 'row',
      title: row.row,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const spec of row.panels) {
      if (x + spec.w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      out.push(panel(spec, id++, x, y));
      x += spec.w;
      rowHeight = Math.max(rowHeight, spec.h ?? 8);
    }
    y += rowHeight;
  }
  return out;
}

function queryVariable(name: string, label: string, query: string, description: string): Json {
  return {
    name,
    label,
    description,
    type: 'query',
    datasource: DATASOURCE,
    definition: query,
    query,
    // On time range change: label_values(<series>, ...) lists what reported within the time range,
    // so clusters nobody has reported for longer than the range are not listed.
    refresh: 2,
    regex: '',
    sort: 1,
    multi: true,
    includeAll: true,
    allValue: '.+',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    hide: 0,
  };
}

function lookbackVariable(): Json {
  return {
    name: 'lookback',
    label: 'Keep gone nodes for',
    description:
      'How long a node, replica or shard that stopped reporting (its datastore or exporter down) stays on the panels, with its last known identity and role.',
    type: 'custom',
    query: LOOKBACK_OPTIONS.join(','),
    current: { selected: true, text: LOOKBACK_DEFAULT, value: LOOKBACK_DEFAULT },
    options: LOOKBACK_OPTIONS.map((o) => ({ selected: o === LOOKBACK_DEFAULT, text: o, value: o })),
    multi: false,
    includeAll: false,
    hide: 0,
  };
}

function templating(): Json {
  return {
    list: [
      {
        name: 'datasource',
        label: 'Data source',
        type: 'datasource',
        query: 'prometheus',
        regex: '',
        current: {},
        options: [],
        hide: 0,
        refresh: 1,
        includeAll: false,
        multi: false,
      },
      queryVariable(
        'job',
        'Job',
        'label_values(datastore_exporter_build_info, job)',
        'Prometheus jobs scraping datastore-exporter.',
      ),
      queryVariable(
        'cluster_id',
        'Cluster_id',
        'label_values(datastore_node_info{job=~"$job"}, cluster_id)',
        "Clusters that reported within the dashboard's time range (--cluster-id, or the datastore's own cluster identity).",
      ),
      queryVariable(
        'instance',
        'Instance',
        'label_values(datastore_node_info{job=~"$job", cluster_id=~"$cluster_id"}, instance)',
        'Exporter targets (one per datastore node) in the selected clusters.',
      ),
      lookbackVariable(),
    ],
  };
}

export function dashboard(uid: string, title: string, description: string, rows: RowSpec[]): Json {
  return {
    id: null,
    uid,
    title,
    description,
    tags: ['datastore-exporter'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    timepicker: {},
    timezone: '',
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    links: [
      {
        title: 'Datastore dashboards',
        type: 'dashboards',
        tags: ['datastore-exporter'],
        asDropdown: false,
        includeVars: true,
        keepTime: true,
        icon: 'external link',
        targetBlank: false,
        tooltip: '',
        url: '',
      },
    ],
    templating: templating(),
    panels: layout(rows),
  };
}

/** The exact text committed for a dashboard: 2-space JSON and a final newline. */
export function renderDashboard(model: Json): string {
  return `${JSON.stringify(model, null, 2)}\n`;
}
