/**
 * The Helm chart. Checked from its sources:
 *  - every values example (values.yaml, and values.yaml + each ci/*-values.yaml merged the way Helm
 *    merges them) validates against values.schema.json, and the schema rejects the classic mistakes;
 *  - templates only reference values that exist, every value is used, blocks are balanced, included
 *    templates are defined and read files exist;
 *  - the rules and dashboards inside the chart are byte-identical to rules/ and dashboards/;
 *  - the password only ever reaches the exporter as a mounted file;
 *  - Chart.yaml agrees with package.json.
 * And rendered by a real Helm (scripts/install-helm.sh; $HELM_BIN), for the defaults and every
 * ci/*-values.yaml: the probes, the password file, the rules and dashboards as objects, the
 * discovery scrape configs. Without helm these tests fail, as a missing datastore server would.
 * (scripts/check-helm.sh also runs `helm lint --strict`, and kubeconform where it is installed.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { DEFAULT_PORT, FLAGS } from '../src/config/flags';
import { DRIVERS, supportedSchemes } from '../src/drivers/registry';
import { parseProbeConfig } from '../src/probe/config';
import { generatedChartFiles, withRegistryKeywords, withRegistrySchemes } from '../scripts/helm/chart-files';
import { assertSupportedSchema, validate, type JsonSchema } from './support/json-schema';

const ROOT = resolve(__dirname, '..');
const CHART = join(ROOT, 'helm/datastore-exporter');
const SYNC_HINT = 'the chart copy differs from the source: run npm run sync-helm';

type Values = Record<string, unknown>;
const read = (path: string): string => readFileSync(path, 'utf8');
const values = parseYaml(read(join(CHART, 'values.yaml'))) as Values;
const schema = JSON.parse(read(join(CHART, 'values.schema.json'))) as JsonSchema;
const ciFiles = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('-values.yaml'))
  .sort();
const templateFiles = readdirSync(join(CHART, 'templates')).sort();
const templates = new Map(templateFiles.map((f) => [f, read(join(CHART, 'templates', f))]));

function isMap(v: unknown): v is Values {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's coalescing of a user values file onto the chart's: maps merge, anything else replaces, null deletes. */
function helmMerge(base: Values, override: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(override)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = helmMerge(out[k] as Values, v);
    else out[k] = v;
  }
  return out;
}

function withOverride(override: Values): Values {
  return helmMerge(values, override);
}

function get(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (isMap(o) ? o[k] : undefined), obj);
}

function has(obj: unknown, path: string): boolean {
  let o: unknown = obj;
  for (const k of path.split('.')) {
    if (!isMap(o) || !(k in o)) return false;
    o = o[k];
  }
  return true;
}

describe('values.schema.json', () => {
  test('uses only JSON Schema keywords the test validator checks, and draft-07', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(() => assertSupportedSchema(schema)).not.toThrow();
  });

  test('values.yaml validates', () => {
    expect(validate(schema, values)).toEqual([]);
  });

  test.each(ciFiles)('values.yaml + ci/%s validates and sets a target or probe mode', (file) => {
    const merged = withOverride(parseYaml(read(join(CHART, 'ci', file))) as Values);
    expect(validate(schema, merged)).toEqual([]);
    if (get(merged, 'probe.enabled') !== true) expect(merged.target).toMatch(/^[a-z]+:\/\//);
  });

  test('there is a probe-mode example: seeds, several replicas, ScrapeConfigs, TLS and basic auth', () => {
    const file = ciFiles.find((f) => f.startsWith('probe'));
    expect(file).toBeDefined();
    const merged = withOverride(parseYaml(read(join(CHART, 'ci', file!))) as Values);
    expect(get(merged, 'target')).toBe('');
    expect(get(merged, 'probe.replicas')).toBeGreaterThan(1);
    expect((get(merged, 'probe.seeds') as unknown[]).length).toBeGreaterThan(0);
    expect(get(merged, 'probe.scrapeConfig.enabled')).toBe(true);
    expect(has(merged, 'webConfig.config.tls_server_config')).toBe(true);
    expect(get(merged, 'webConfig.scrape.basicAuthSecret')).toBeTruthy();
    // The probe config in values is the exporter's own format: the exporter's parser accepts it.
    expect(() =>
      parseProbeConfig(stringifyYaml(get(merged, 'probe.config')), 'chart values', () => 'pw'),
    ).not.toThrow();
  });

  test('there are examples for a standalone Redis and for PostgreSQL with a password Secret', () => {
    expect(ciFiles).toEqual(expect.arrayContaining(['redis-standalone-values.yaml']));
    const pg = ciFiles.find((f) => f.startsWith('postgresql'));
    expect(pg).toBeDefined();
    const merged = withOverride(parseYaml(read(join(CHART, 'ci', pg!))) as Values);
    expect(get(merged, 'target')).toMatch(/^postgres(ql)?:\/\//);
    expect(get(merged, 'auth.passwordSecret.name')).toBeTruthy();
  });

  test("the target's schemes are exactly the exporter's drivers", () => {
    const pattern = (schema.properties!.target as JsonSchema).pattern!;
    const schemes = /\^\(([a-z|]+)\):/.exec(pattern)![1]!.split('|');
    expect(schemes.sort()).toEqual([...supportedSchemes()].sort());
  });

  test.each([
    ['a password in the target URL', { target: 'redis://:s3cret@redis:6379' }, 'target'],
    [
      'user:password in the target URL',
      { target: 'postgresql://exporter:s3cret@pg:5432/postgres' },
      'target',
    ],
    ['an unsupported scheme', { target: 'http://redis:6379' }, 'target'],
    ['a misspelt key', { serviceMonitor: { enable: true } }, 'serviceMonitor.enable: unknown key'],
    ['an unknown top-level key', { replicaCount: 2 }, 'replicaCount: unknown key'],
    [
      'a numeric sidecar label value',
      { dashboards: { labels: { grafana_dashboard: 1 } } },
      'grafana_dashboard',
    ],
    ['a port out of range', { service: { port: 70000 } }, 'service.port'],
    ['a bad scrape interval', { serviceMonitor: { interval: '30 seconds' } }, 'serviceMonitor.interval'],
    ['a bad collect interval', { config: { collectInterval: 'often' } }, 'config.collectInterval'],
    ['a collect interval without a unit', { config: { collectInterval: '5' } }, 'config.collectInterval'],
    ['a collect timeout without a unit', { config: { collectTimeout: '3' } }, 'config.collectTimeout'],
    ['an unknown log level', { config: { logLevel: 'verbose' } }, 'config.logLevel'],
    ['extraArgs that are not flags', { extraArgs: ['redis://x'] }, 'extraArgs[0]'],
    ['an env var without a name', { extraEnv: [{ value: 'x' }] }, 'extraEnv[0]'],
    ['a relative password file', { auth: { passwordFile: 'secret.txt' } }, 'auth.passwordFile'],
    ['no probe replica', { probe: { replicas: 0 } }, 'probe.replicas'],
    [
      'a misspelt probe config key',
      { probe: { config: { allowed_target: [] } } },
      'allowed_target: unknown key',
    ],
    [
      'an allowlist pattern without a scheme',
      { probe: { config: { allowed_targets: ['10.0.0.1:6379'] } } },
      'probe.config.allowed_targets[0]',
    ],
    [
      'a password inline in an auth module',
      { probe: { config: { auth_modules: { m: { password: 'x' } } } } },
      'password: unknown key',
    ],
    [
      'a relative auth module password file',
      { probe: { config: { auth_modules: { m: { password_file: 'pw' } } } } },
      'password_file',
    ],
    [
      'a seed with a password',
      { probe: { seeds: [{ name: 'a', target: 'redis://:pw@r:6379' }] } },
      'probe.seeds[0].target',
    ],
    [
      'a seed with URL parameters',
      { probe: { seeds: [{ name: 'a', target: 'postgresql://pg:5432/postgres?sslmode=disable' }] } },
      'probe.seeds[0].target',
    ],
    ['a seed without a name', { probe: { seeds: [{ target: 'redis://r:6379' }] } }, 'probe.seeds[0]'],
    [
      'a cluster_id with a space',
      { probe: { seeds: [{ name: 'a', target: 'redis://r', clusterId: 'a b' }] } },
      'clusterId',
    ],
    [
      'a misspelt web config key',
      { webConfig: { config: { tls_server_cfg: {} } } },
      'tls_server_cfg: unknown key',
    ],
  ])('rejects %s', (_what, override, expected) => {
    const errors = validate(schema, withOverride(override as Values));
    expect(errors.join('\n')).toContain(expected);
  });

  test('accepts URLs the exporter accepts (user name, query, several hosts)', () => {
    for (const target of [
      'redis://redis-master:6379',
      'rediss://redis.example:6380/0',
      'postgresql://exporter@pg-0.pg:5432/postgres?sslmode=require',
      'mongodb://monitor@mongo-0.mongo:27017,mongo-1.mongo:27017/?replicaSet=rs0',
      'kafka://kafka-0.kafka-headless:9092',
      'etcds://etcd-0.etcd:2379',
    ]) {
      expect({ target, errors: validate(schema, withOverride({ target })) }).toEqual({ target, errors: [] });
    }
  });
});

describe('templates', () => {
  const VALUE_REF = /\$?\.Values\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)/g;
  const refs = [...templates].flatMap(([file, text]) =>
    [...text.matchAll(VALUE_REF)].map((m) => ({ file, path: m[1]! })),
  );

  test('reference only values that exist in values.yaml', () => {
    expect(refs.length).toBeGreaterThan(20);
    expect(refs.filter((r) => !has(values, r.path))).toEqual([]);
  });

  test('use every value of values.yaml (no dead settings)', () => {
    const leaves: string[] = [];
    const walk = (o: unknown, prefix: string): void => {
      // Free-form Kubernetes objects and maps are handed over whole (toYaml): the key itself is the leaf.
      const schemaNode = prefix
        .split('.')
        .reduce<JsonSchema | undefined>((s, k) => s?.properties?.[k], schema);
      if (isMap(o) && schemaNode?.properties) {
        for (const [k, v] of Object.entries(o)) walk(v, prefix ? `${prefix}.${k}` : k);
      } else {
        leaves.push(prefix);
      }
    };
    for (const [k, v] of Object.entries(values)) walk(v, k);
    const used = (leaf: string): boolean =>
      refs.some((r) => r.path === leaf || leaf.startsWith(`${r.path}.`));
    expect(leaves.filter((l) => !used(l))).toEqual([]);
  });

  test.each(templateFiles)('%s: if/range/with/define blocks are balanced', (file) => {
    const actions = [...templates.get(file)!.matchAll(/\{\{-?\s*(\/\*[\s\S]*?\*\/|[^}]*?)\s*-?\}\}/g)].map(
      (m) => m[1]!,
    );
    let depth = 0;
    for (const a of actions) {
      if (/^(if|range|with|define|block)\b/.test(a)) depth++;
      else if (/^end\b/.test(a)) depth--;
      expect(depth).toBeGreaterThanOrEqual(0);
    }
    expect(depth).toBe(0);
  });

  test('include/template only named templates that _helpers.tpl defines', () => {
    const defined = new Set(
      [...templates.get('_helpers.tpl')!.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]),
    );
    const used = [...templates.values()].flatMap((t) =>
      [...t.matchAll(/\b(?:include|template)\s+"([^"]+)"/g)].map((m) => m[1]!),
    );
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((n) => !defined.has(n))).toEqual([]);
  });

  test('files read with .Files.Get exist in the chart', () => {
    const paths = [...templates.values()].flatMap((t) =>
      [...t.matchAll(/\.Files\.Get\s+"([^"]+)"/g)].map((m) => m[1]!),
    );
    expect(paths).toContain('files/datastore-exporter.rules.yml');
    for (const p of paths) expect({ p, exists: existsSync(join(CHART, p)) }).toEqual({ p, exists: true });
  });

  test('the password reaches the exporter only as a mounted Secret file (--target.password-file)', () => {
    const deployment = templates.get('deployment.yaml')!;
    expect(deployment).toContain('--target.password-file=');
    expect(deployment).toMatch(/secret:\s*\n\s*secretName: \{\{ \.Values\.auth\.passwordSecret\.name \}\}/);
    expect(deployment).toMatch(/mountPath: \{\{ \.Values\.auth\.mountPath \}\}\s*\n\s*readOnly: true/);
    for (const [file, text] of templates) {
      expect({ file, secretKeyRef: /secretKeyRef/.test(text) }).toEqual({ file, secretKeyRef: false });
      expect({ file, passwordEnv: /DATASTORE_PASSWORD\b/.test(text) }).toEqual({ file, passwordEnv: false });
    }
  });
});

describe('probe mode and the web config in the templates', () => {
  const deployment = templates.get('deployment.yaml')!;
  const helpers = templates.get('_helpers.tpl')!;

  test('probe mode: --target only when set, the probe config as a mounted Secret file', () => {
    expect(deployment).toMatch(
      /\{\{- if not \.Values\.probe\.enabled \}\}\s*\n\s*- \{\{ printf "--target=%s" \(required/,
    );
    expect(deployment).toContain('--probe.config-file=%s" (include "datastore-exporter.probeConfigFile" .)');
    for (const flag of ['probe.timeout', 'probe.idle-timeout', 'probe.max-concurrent', 'probe.max-targets']) {
      expect(deployment).toContain(`--${flag}=`);
    }
    expect(deployment).toMatch(
      /- name: probe-config\s*\n\s*secret:\s*\n\s*secretName: \{\{ \.Values\.probe\.existingSecret \| default/,
    );
    expect(templates.get('secret.yaml')).toContain('toYaml .Values.probe.config');
    // Auth module passwords: Secrets mounted as files, never an environment variable.
    expect(deployment).toMatch(/range \.Values\.probe\.passwordSecrets[\s\S]*?secretName: \{\{ \. \}\}/);
  });

  test('several replicas: a StatefulSet with a headless Service, and hashmod over the replicas', () => {
    expect(deployment).toContain('kind: {{ ternary "StatefulSet" "Deployment" (eq $scaledOut "true") }}');
    expect(deployment).toContain('serviceName: {{ include "datastore-exporter.fullname" . }}-headless');
    expect(templates.get('service-headless.yaml')).toContain('clusterIP: None');
    expect(helpers).toContain('"modulus" (int $root.Values.probe.replicas)');
    expect(helpers).toContain('printf "%s-$1.%s-headless.%s.svc:%v"');
  });

  test("the chart's relabelling is the documented one (docs/probe.md discovery and scale-out blocks)", () => {
    const doc = read(join(ROOT, 'docs/probe.md'));
    for (const marker of ['discovery-scrape-config', 'scale-out-scrape-config']) {
      const block = new RegExp(`<!-- ${marker} -->\\s*\`\`\`yaml\\n([\\s\\S]*?)\`\`\``).exec(doc);
      expect(block).not.toBeNull();
      const [job] = (
        parseYaml(block![1]!) as { scrape_configs: { relabel_configs: Record<string, unknown>[] }[] }
      ).scrape_configs;
      for (const rule of job!.relabel_configs) {
        for (const label of [...((rule.source_labels as string[]) ?? []), rule.target_label as string]) {
          expect({ marker, label, inChart: helpers.includes(`"${label}"`) }).toEqual({
            marker,
            label,
            inChart: true,
          });
        }
      }
    }
    const scrapeConfig = templates.get('scrapeconfig.yaml')!;
    expect(scrapeConfig).toContain('kind: ScrapeConfig');
    expect(scrapeConfig).toContain('httpSDConfigs:');
    expect(scrapeConfig).toContain('metricsPath: /probe');
    expect(templates.get('scrape-configs.yaml')).toContain('"http_sd_configs"');
    expect(helpers).toContain('/discover?%s');
  });

  test('kubelet probes follow the web config: HTTPS with TLS, a TCP check when client certificates are required', () => {
    expect(deployment).not.toMatch(
      /toYaml \. \| nindent 12 \}\}\s*\n\s*\{\{- end \}\}\s*\n\s*\{\{- with \.Values\.readinessProbe/,
    );
    expect(deployment.match(/include "datastore-exporter.healthProbe"/g)).toHaveLength(2);
    expect(helpers).toContain('$_ := set $probe.httpGet "scheme" "HTTPS"');
    expect(helpers).toContain('set $probe "tcpSocket"');
    expect(helpers).toContain('"RequireAndVerifyClientCert"');
    expect(deployment).toContain('--web.config.file=%s" (include "datastore-exporter.webConfigFile" .)');
  });

  test('the ServiceMonitor scrapes over the web config: scheme, TLS settings, basic auth from a Secret', () => {
    const sm = templates.get('servicemonitor.yaml')!;
    expect(sm).toContain('scheme: {{ include "datastore-exporter.scheme" . }}');
    expect(sm).toContain('.Values.webConfig.scrape.tlsConfig');
    expect(sm).toContain('.Values.webConfig.scrape.basicAuthSecret');
  });
});

describe('chart defaults', () => {
  test('hardened security context: non-root, read-only root, no privilege escalation, no capabilities, seccomp', () => {
    expect(get(values, 'securityContext')).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(get(values, 'podSecurityContext')).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // The uid the pod runs as is the image's USER (a numeric uid, so runAsNonRoot can be verified).
    const user = /^USER\s+(\d+)(?::(\d+))?/m.exec(read(join(ROOT, 'Dockerfile')));
    expect(get(values, 'podSecurityContext.runAsUser')).toBe(Number(user![1]));
    expect(get(values, 'serviceAccount.automountServiceAccountToken')).toBe(false);
  });

  test('liveness on /healthz, readiness on /ready, on the exporter port', () => {
    expect(get(values, 'livenessProbe.httpGet')).toEqual({ path: '/healthz', port: 'http' });
    expect(get(values, 'readinessProbe.httpGet')).toEqual({ path: '/ready', port: 'http' });
    expect(get(values, 'service.port')).toBe(DEFAULT_PORT);
    expect(get(values, 'resources.requests')).toBeDefined();
    expect(get(values, 'resources.limits.memory')).toBeDefined();
  });

  test('the cluster id: the release name by default for datastores without one (a fallback), config.clusterId over everything', () => {
    const deployment = templates.get('deployment.yaml')!;
    // Always passed, from the release unless config.clusterIdFallback says otherwise...
    expect(deployment).toMatch(
      /^ {12}- \{\{ printf "--cluster-id\.fallback=%s" \(default \.Release\.Name \.Values\.config\.clusterIdFallback\) \| quote \}\}$/m,
    );
    // ...outside any condition (the line before closes the clusterId block, at the same depth).
    const lines = deployment.split('\n');
    const at = lines.findIndex((l) => l.includes('--cluster-id.fallback'));
    expect(lines[at - 1]!.trim()).toBe('{{- end }}');
    expect(lines[at - 3]!.trim()).toBe('{{- with .Values.config.clusterId }}');
    // Both are real exporter flags, and the defaults leave the choice to the release.
    const flags = FLAGS.map((f) => f.name);
    expect(flags).toEqual(expect.arrayContaining(['cluster-id', 'cluster-id.fallback']));
    expect(get(values, 'config.clusterId')).toBe('');
    expect(get(values, 'config.clusterIdFallback')).toBe('');
  });

  test('optional objects are off by default; dashboards carry the Grafana sidecar label', () => {
    expect(get(values, 'probe.enabled')).toBe(false);
    expect(get(values, 'probe.scrapeConfig.enabled')).toBe(false);
    expect(get(values, 'probe.replicas')).toBe(1);
    expect(get(values, 'probe.config.allowed_targets')).toEqual([]);
    expect(get(values, 'webConfig.config')).toEqual({});
    expect(get(values, 'serviceMonitor.enabled')).toBe(false);
    expect(get(values, 'prometheusRule.enabled')).toBe(false);
    expect(get(values, 'dashboards.enabled')).toBe(false);
    expect(get(values, 'dashboards.labels')).toEqual({ grafana_dashboard: '1' });
  });

  test("the ServiceMonitor's job (the app.kubernetes.io/name label) is selected by the alert rules", () => {
    expect(templates.get('servicemonitor.yaml')).toContain('jobLabel: app.kubernetes.io/name');
    const chart = parseYaml(read(join(CHART, 'Chart.yaml'))) as { name: string };
    const rules = read(join(ROOT, 'rules/datastore-exporter.rules.yml'));
    const selectors = [...rules.matchAll(/job=~"([^"]+)"/g)].map((m) => m[1]!);
    expect(selectors.length).toBeGreaterThan(0);
    for (const re of selectors) expect(new RegExp(`^(?:${re})$`).test(chart.name)).toBe(true);
  });
});

describe('files shared with the repository', () => {
  test('files/datastore-exporter.rules.yml is rules/datastore-exporter.rules.yml, byte for byte', () => {
    const source = join(ROOT, 'rules/datastore-exporter.rules.yml');
    const copy = join(CHART, 'files/datastore-exporter.rules.yml');
    expect({ source: existsSync(source), copy: existsSync(copy) }).toEqual({ source: true, copy: true });
    const same = readFileSync(source).equals(readFileSync(copy));
    expect({ same, hint: SYNC_HINT }).toEqual({ same: true, hint: SYNC_HINT });
    // The PrometheusRule template takes .groups from it.
    const parsed = parseYaml(read(copy)) as { groups?: { name: string; rules: unknown[] }[] };
    expect(parsed.groups?.length).toBeGreaterThan(0);
  });

  test('files/dashboards/ holds exactly dashboards/*.json, byte for byte', () => {
    const list = (dir: string): string[] =>
      existsSync(dir)
        ? readdirSync(dir)
            .filter((f) => f.endsWith('.json'))
            .sort()
        : [];
    const sources = list(join(ROOT, 'dashboards'));
    const copies = list(join(CHART, 'files/dashboards'));
    expect(sources.length).toBeGreaterThan(0);
    expect({ copies, hint: SYNC_HINT }).toEqual({ copies: sources, hint: SYNC_HINT });
    for (const f of sources) {
      const same = readFileSync(join(ROOT, 'dashboards', f)).equals(
        readFileSync(join(CHART, 'files/dashboards', f)),
      );
      expect({ file: f, same, hint: SYNC_HINT }).toEqual({ file: f, same: true, hint: SYNC_HINT });
    }
  });

  test('each dashboard fits a ConfigMap: a valid name and key, JSON, under 1 MiB', () => {
    for (const f of readdirSync(join(CHART, 'files/dashboards'))) {
      expect(f).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.json$/);
      const text = read(join(CHART, 'files/dashboards', f));
      expect(() => JSON.parse(text)).not.toThrow();
      expect(Buffer.byteLength(text)).toBeLessThan(1024 * 1024 - 4096);
    }
  });
});

describe('Chart.yaml and scripts', () => {
  test('every file npm run sync-helm writes is committed as it would write it', () => {
    const differing = [...generatedChartFiles(ROOT)]
      .filter(
        ([path, content]) => !existsSync(join(ROOT, path)) || !readFileSync(join(ROOT, path)).equals(content),
      )
      .map(([path]) => path);
    expect({ differing, hint: SYNC_HINT }).toEqual({ differing: [], hint: SYNC_HINT });
  });

  test('the keywords name every datastore of the driver registry', () => {
    const chart = parseYaml(read(join(CHART, 'Chart.yaml'))) as { keywords: string[] };
    for (const d of DRIVERS) expect(chart.keywords).toContain(d.name);
    expect(chart.keywords).toEqual(expect.arrayContaining(['prometheus', 'exporter']));
  });

  test('sync-helm replaces stale scheme and keyword lists', () => {
    const stale = '{"pattern": "^$|^(redis|postgresql)://x", "other": "^(etcd)://(\\\\[)"}';
    const schemes = supportedSchemes().join('|');
    expect(withRegistrySchemes(stale)).toBe(
      `{"pattern": "^$|^(${schemes})://x", "other": "^(${schemes})://(\\\\[)"}`,
    );
    const chart = 'name: x\nkeywords:\n  - prometheus\n  - redis\nannotations:\n  a: b\n';
    const keywords = (parseYaml(withRegistryKeywords(chart)) as { keywords: string[] }).keywords;
    expect(keywords).toEqual([
      'prometheus',
      'exporter',
      'monitoring',
      ...DRIVERS.map((d) => d.name),
      'replication',
    ]);
    expect(withRegistryKeywords(chart)).toMatch(/\nannotations:\n {2}a: b\n$/);
  });

  test('apiVersion v2, named after its directory, appVersion = package.json version', () => {
    const chart = parseYaml(read(join(CHART, 'Chart.yaml'))) as Record<string, unknown>;
    const pkg = JSON.parse(read(join(ROOT, 'package.json'))) as { version: string };
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'datastore-exporter', type: 'application' });
    expect(chart.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    expect(chart.appVersion).toBe(pkg.version);
    expect(chart.description).toBeTruthy();
  });

  test('check-helm.sh says what it skipped and exits 0 when helm is absent', () => {
    const res = spawnSync('bash', [join(ROOT, 'scripts/check-helm.sh')], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HELM_BIN: '/nonexistent/helm' },
    });
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('helm is not installed');
  });
});

/** $HELM_BIN, else the binary scripts/install-helm.sh caches (its default place), else helm in PATH. */
function helmBinary(): string {
  if (process.env.HELM_BIN) return process.env.HELM_BIN;
  const version = /^HELM_VERSION=(\S+)$/m.exec(read(join(ROOT, 'scripts/install-helm.sh')))![1]!;
  const cached = `/tmp/datastore-exporter-helm/${version}/helm`;
  return existsSync(cached) ? cached : 'helm';
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered Kubernetes objects, read field by field
type K8sObject = Record<string, any>;

/** `helm template` with these arguments, as on a cluster with the operator's CRDs; throws if helm cannot run. */
function helmTemplate(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const helm = helmBinary();
  const res = spawnSync(
    helm,
    [
      'template',
      'check',
      CHART,
      '--namespace',
      'monitoring',
      '--api-versions',
      'monitoring.coreos.com/v1',
      ...args,
    ],
    { encoding: 'utf8' },
  );
  if (res.error) {
    throw new Error(
      `cannot run helm (${helm}): install it with \`bash scripts/install-helm.sh\` or set HELM_BIN: ${res.error.message}`,
    );
  }
  return res;
}

/** Every object `helm template` renders with these arguments. */
function rendered(args: string[]): K8sObject[] {
  const res = helmTemplate(args);
  if (res.status !== 0) throw new Error(`helm template failed: ${res.stderr}`);
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => !!o);
}

const VALUE_SETS: [string, string[]][] = [
  ['defaults', ['--set', 'target=redis://redis:6379']],
  ...readdirSync(join(CHART, 'ci'))
    .filter((f) => f.endsWith('-values.yaml'))
    .map((f): [string, string[]] => [f, ['--values', join(CHART, 'ci', f)]]),
];

const ofKind = (objects: K8sObject[], kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);
const exporterContainer = (objects: K8sObject[]): K8sObject => {
  const [workload] = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
  return (workload!.spec.template.spec.containers as K8sObject[]).find((c) => c.name === 'exporter')!;
};

describe('the chart rendered by Helm', () => {
  test.each(VALUE_SETS)(
    '%s: the kubelet probes ask /healthz and /ready on the port the exporter listens on (HTTPS when it serves TLS)',
    (_name, args) => {
      const objects = rendered(args);
      expect(objects.every((o) => o.kind && o.metadata?.name)).toBe(true);
      const container = exporterContainer(objects);
      const listen = (container.args as string[]).find((a) => a.startsWith('--web.listen-address='))!;
      const port = (container.ports as K8sObject[]).find((p) => p.name === 'http')!;
      expect(listen).toBe(`--web.listen-address=:${port.containerPort}`);
      // TLS where the value set's web config serves it (the defaults have no web config).
      const file = args[0] === '--values' ? args[1]! : undefined;
      const values = file ? (parseYaml(read(file)) as K8sObject) : {};
      const tls = !!values.webConfig?.config?.tls_server_config;
      for (const [probe, path] of [
        ['livenessProbe', '/healthz'],
        ['readinessProbe', '/ready'],
      ] as const) {
        expect(container[probe].httpGet).toEqual({ path, port: 'http', ...(tls ? { scheme: 'HTTPS' } : {}) });
      }
    },
  );

  test('without a target (and not in probe mode) it refuses to render, saying what to set', () => {
    const res = helmTemplate([]);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(
      /target is required: the datastore URL, without a password .* or probe\.enabled=true/,
    );
  });

  test('a password from a Secret reaches the exporter only as a read-only file', () => {
    const objects = rendered(['--values', join(CHART, 'ci/postgresql-secret-values.yaml')]);
    const container = exporterContainer(objects);
    const flag = (container.args as string[]).find((a) => a.startsWith('--target.password-file='))!;
    const file = flag.split('=')[1]!;
    const mount = (container.volumeMounts as K8sObject[]).find((m) => file === `${m.mountPath}/password`)!;
    expect(mount.readOnly).toBe(true);
    const [workload] = ofKind(objects, 'Deployment');
    const volume = (workload!.spec.template.spec.volumes as K8sObject[]).find((v) => v.name === mount.name)!;
    expect(volume.secret).toMatchObject({
      secretName: 'pg-exporter',
      items: [{ key: 'password', path: 'password' }],
    });
    // Nowhere else: no environment variable from a Secret, no password in the target URL.
    expect(JSON.stringify(container.env ?? [])).not.toMatch(/secretKeyRef/);
    expect((container.args as string[]).find((a) => a.startsWith('--target='))).not.toMatch(/:[^@/]*@/);
  });

  test("the PrometheusRule holds the rule file's groups, and one ConfigMap per dashboard holds it unchanged", () => {
    const objects = rendered(['--values', join(CHART, 'ci/redis-standalone-values.yaml')]);
    const [rule] = ofKind(objects, 'PrometheusRule');
    const source = parseYaml(read(join(ROOT, 'rules/datastore-exporter.rules.yml'))) as { groups: unknown[] };
    expect(rule!.spec.groups).toEqual(source.groups);
    const dashboards = readdirSync(join(ROOT, 'dashboards')).filter((f) => f.endsWith('.json'));
    const maps = ofKind(objects, 'ConfigMap');
    expect(maps).toHaveLength(dashboards.length);
    for (const f of dashboards) {
      const map = maps.find((m) => f in (m.data as Record<string, string>))!;
      expect(JSON.parse(map.data[f] as string)).toEqual(JSON.parse(read(join(ROOT, 'dashboards', f))));
    }
  });

  test('probe mode: a StatefulSet of probe.replicas, and one ScrapeConfig per seed discovering through /discover', () => {
    const file = join(CHART, 'ci/probe-discovery-values.yaml');
    const values = parseYaml(read(file)) as {
      probe: { replicas: number; seeds: { name: string; target: string }[] };
    };
    const objects = rendered(['--values', file]);
    expect(ofKind(objects, 'Deployment')).toHaveLength(0);
    expect(ofKind(objects, 'StatefulSet')[0]!.spec.replicas).toBe(values.probe.replicas);
    const scrapes = ofKind(objects, 'ScrapeConfig');
    expect(scrapes).toHaveLength(values.probe.seeds.length);
    for (const seed of values.probe.seeds) {
      const scrape = scrapes.find((s) => (s.metadata.name as string).endsWith(`-${seed.name}`))!;
      expect(scrape.spec).toMatchObject({ metricsPath: '/probe', scheme: 'HTTPS' });
      const url = new URL(scrape.spec.httpSDConfigs[0].url as string);
      expect(url.pathname).toBe('/discover');
      expect(url.searchParams.get('target')).toBe(seed.target);
      // Each discovered member goes to one replica of the StatefulSet (hashmod over probe.replicas).
      const hashmod = (scrape.spec.relabelings as K8sObject[]).find((r) => r.action === 'hashmod')!;
      expect(hashmod.modulus).toBe(values.probe.replicas);
    }
  });
});
