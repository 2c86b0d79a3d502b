/**
 * The docs stay true to the code and to themselves, with no server: every flag `--help` prints is in
 * docs/configuration.md and every flag documented there exists; every metric the exporter can emit
 * is in docs/metrics.md and every metric named there exists; every relative link (and its anchor)
 * resolves; and no paragraph of more than three lines lives in two files (one home per fact).
 *
 * The lists come from the code itself: helpText() (what --help prints), the prom-client
 * registrations found in src/, MODEL_HELP (the model metrics' families) and the self registry
 * built the way /metrics builds it (prom-client's process metrics included).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { allFlags, helpText } from '../src/config/flags';
import type { CollectorState } from '../src/core/collector';
import { MODEL_HELP, PROMETHEUS_CONTENT_TYPE } from '../src/http/exposition';
import { buildSelfRegistry } from '../src/http/metrics';

const ROOT = resolve(__dirname, '..');

/** README.md and the other top-level pages, and docs/*.md: the pages users read. */
export function markdownFiles(root: string = ROOT): string[] {
  const top = readdirSync(root)
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(root, f));
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(root, 'docs', f));
  return [...top, ...docs].sort();
}

function read(file: string): string {
  return readFileSync(file, 'utf8');
}

function rel(file: string): string {
  return relative(ROOT, file);
}

// ---------------------------------------------------------------------------------------------
// Markdown helpers (pure, so the rules below can be tested on broken input too).

interface Line {
  text: string;
  /** Inside a fenced code block (the fence lines included). */
  code: boolean;
}

export function classifyLines(md: string): Line[] {
  let fence: string | undefined;
  return md.split('\n').map((text) => {
    const m = /^\s*(```+|~~~+)/.exec(text);
    if (fence) {
      if (m && m[1]!.startsWith(fence[0]!) && m[1]!.length >= fence.length) fence = undefined;
      return { text, code: true };
    }
    if (m) {
      fence = m[1];
      return { text, code: true };
    }
    return { text, code: false };
  });
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens, duplicates numbered. */
export function headingAnchors(md: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text, code } of classifyLines(md)) {
    if (code) continue;
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (!m) continue;
    const plain = m[1]!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
      .replace(/<[^>]+>/g, '') // inline HTML
      .replace(/[`*_~]/g, (c) => (c === '_' ? '_' : '')); // emphasis and code marks
    const slug = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  for (const m of md.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(m[1]!);
  return anchors;
}

/** Markdown link targets outside code (fenced blocks and inline code spans). */
export function linkTargets(md: string): string[] {
  const targets: string[] = [];
  for (const { text, code } of classifyLines(md)) {
    if (code) continue;
    const prose = text.replace(/`[^`]*`/g, '');
    for (const m of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(m[1]!);
  }
  return targets;
}

/** What is wrong with each relative link of a page: a missing file, or a missing anchor. */
export function brokenLinks(file: string, md: string): string[] {
  const problems: string[] = [];
  for (const target of linkTargets(md)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:...
    const [path, anchor] = target.split('#', 2) as [string, string | undefined];
    const dest = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
    if (!existsSync(dest)) {
      problems.push(`${rel(file)}: ${target}: no such file`);
      continue;
    }
    if (anchor === undefined || anchor === '') continue;
    if (!dest.endsWith('.md') || statSync(dest).isDirectory()) continue;
    if (!headingAnchors(read(dest)).has(decodeURIComponent(anchor).toLowerCase())) {
      problems.push(`${rel(file)}: ${target}: no heading with that anchor in ${rel(dest)}`);
    }
  }
  return problems;
}

/**
 * Paragraphs: runs of non-blank lines (a fenced code block is one paragraph, blank lines and all),
 * whitespace-normalised, with the number of lines they take.
 */
export function paragraphs(md: string): { text: string; lines: number }[] {
  const out: { text: string; lines: number }[] = [];
  let current: string[] = [];
  let inFence = false;
  const flush = (): void => {
    if (current.length)
      out.push({ text: current.join(' ').replace(/\s+/g, ' ').trim(), lines: current.length });
    current = [];
  };
  for (const { text, code } of classifyLines(md)) {
    if (code) {
      if (!inFence) flush();
      inFence = true;
      current.push(text);
      continue;
    }
    if (inFence) {
      flush();
      inFence = false;
    }
    if (text.trim() === '') flush();
    else current.push(text);
  }
  flush();
  return out;
}

/** Paragraphs of more than `maxLines` lines that appear in more than one file. */
export function sharedParagraphs(files: Map<string, string>, maxLines = 3): string[] {
  const homes = new Map<string, Set<string>>();
  for (const [file, md] of files) {
    for (const p of paragraphs(md)) {
      if (p.lines <= maxLines) continue;
      const set = homes.get(p.text) ?? new Set<string>();
      set.add(file);
      homes.set(p.text, set);
    }
  }
  return [...homes]
    .filter(([, set]) => set.size > 1)
    .map(([text, set]) => `${[...set].map(rel).join(' and ')}: "${text.slice(0, 100)}..."`);
}

// ---------------------------------------------------------------------------------------------
// What the code defines.

/** The flags `--help` prints, with their one-letter forms. */
export function helpFlags(help: string = helpText()): string[] {
  const names = new Set<string>();
  for (const m of help.matchAll(/^\s+(?:-([a-zA-Z]), )?--([a-z][a-z0-9.-]*)/gm)) {
    names.add(`--${m[2]}`);
    if (m[1]) names.add(`-${m[1]}`);
  }
  return [...names];
}

/** The flags documented in docs/configuration.md: the first column of its flags table. */
export function documentedFlags(md: string): string[] {
  const names = new Set<string>();
  for (const line of md.split('\n')) {
    const first = /^\|([^|]*)\|/.exec(line)?.[1];
    if (!first) continue;
    for (const m of first.matchAll(/`(--?[a-zA-Z][a-z0-9.-]*)`/g)) names.add(m[1]!);
  }
  return [...names];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** A collector that has not collected yet: enough to build the self registry. */
const idleState = (): CollectorState => ({
  snapshot: null,
  up: false,
  attempted: false,
  lastDurationSeconds: 0,
  errorsTotal: 0,
});

/** Every metric name the exporter can emit, from the code's own registrations. */
export function emittedMetrics(): string[] {
  const names = new Set<string>(Object.keys(MODEL_HELP));
  // prom-client metrics registered anywhere in src/ (self, probe and discovery metrics).
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    for (const m of read(file).matchAll(
      /new (?:Counter|Gauge|Histogram|Summary)(?:<[^>]*>)?\(\{\s*name:\s*'([a-zA-Z_:][a-zA-Z0-9_:]*)'/g,
    )) {
      names.add(m[1]!);
    }
  }
  // The self registry as /metrics builds it: prom-client's process and Node.js metrics, minus the
  // ones the exporter removes.
  for (const metric of buildSelfRegistry(idleState, PROMETHEUS_CONTENT_TYPE, true).getMetricsAsArray()) {
    names.add(metric.name);
  }
  return [...names].sort();
}

/** Label names of the self registry's metrics (e.g. nodejs_version), which are no metric names. */
function selfLabelNames(): Set<string> {
  const labels = new Set<string>();
  for (const metric of buildSelfRegistry(idleState, PROMETHEUS_CONTENT_TYPE, true).getMetricsAsArray()) {
    for (const l of (metric as unknown as { labelNames?: string[] }).labelNames ?? []) labels.add(l);
  }
  return labels;
}

/**
 * Metric-like names in backticks in docs/metrics.md (exporter, process and Node.js families), label
 * names left out.
 */
export function documentedMetrics(md: string, labels: Set<string> = selfLabelNames()): string[] {
  const names = new Set<string>();
  for (const m of md.matchAll(/`((?:datastore|process|nodejs)_[a-z0-9_]+)`/g)) {
    if (!labels.has(m[1]!)) names.add(m[1]!);
  }
  return [...names];
}

// ---------------------------------------------------------------------------------------------

describe('docs/configuration.md and --help', () => {
  const md = read(join(ROOT, 'docs/configuration.md'));
  const help = helpFlags();

  it('finds the flags --help prints (the list is not empty)', () => {
    expect(help).toEqual(expect.arrayContaining(['--target', '--help', '-h', '--kafka.broker-id']));
    expect(help.length).toBeGreaterThanOrEqual(allFlags().length);
  });

  it('documents every flag --help prints', () => {
    const documented = new Set(documentedFlags(md));
    expect(help.filter((f) => !documented.has(f))).toEqual([]);
  });

  it('documents no flag that does not exist', () => {
    const known = new Set(help);
    expect(documentedFlags(md).filter((f) => !known.has(f))).toEqual([]);
  });

  it("documents every flag's environment variables", () => {
    const missing = allFlags().flatMap((f) => f.env.filter((e) => !md.includes(`\`${e}\``)));
    expect(missing).toEqual([]);
  });
});

describe('docs/metrics.md and the metrics the exporter emits', () => {
  const md = read(join(ROOT, 'docs/metrics.md'));
  const emitted = emittedMetrics();

  it('finds the metrics in the code (model, self, probe, process)', () => {
    expect(emitted).toEqual(
      expect.arrayContaining([
        'datastore_up',
        'datastore_shard_role',
        'datastore_exporter_probes_total',
        'datastore_exporter_discoveries_total',
        'process_resident_memory_bytes',
        'nodejs_gc_duration_seconds',
      ]),
    );
    // The exporter drops these three (their names break Prometheus's counter naming).
    expect(emitted).not.toContain('nodejs_active_handles_total');
  });

  it('documents every metric the exporter can emit', () => {
    const documented = new Set(documentedMetrics(md));
    expect(emitted.filter((m) => !documented.has(m))).toEqual([]);
  });

  it('documents no metric the exporter cannot emit', () => {
    const known = new Set(emitted);
    expect(documentedMetrics(md).filter((m) => !known.has(m))).toEqual([]);
  });
});

describe('links', () => {
  const files = markdownFiles();

  it('covers the README and the docs', () => {
    expect(files.map(rel)).toEqual(
      expect.arrayContaining(['README.md', 'CONTRIBUTING.md', 'docs/metrics.md', 'docs/configuration.md']),
    );
  });

  it('resolves every relative link and anchor in README.md, *.md and docs/*.md', () => {
    expect(files.flatMap((f) => brokenLinks(f, read(f)))).toEqual([]);
  });

  it('reports a missing file and a missing anchor', () => {
    const file = join(ROOT, 'README.md');
    expect(
      brokenLinks(file, '[a](docs/nope.md) [b](docs/metrics.md#nope) [c](docs/metrics.md#identity)'),
    ).toEqual([
      'README.md: docs/nope.md: no such file',
      'README.md: docs/metrics.md#nope: no heading with that anchor in docs/metrics.md',
    ]);
  });

  it('makes anchors as GitHub does', () => {
    const anchors = headingAnchors(
      '# Compared with `redis_exporter`\n## Figures (bench/probe.ts)\n## Lag\n## Lag\n```\n# not a heading\n```\n',
    );
    expect([...anchors]).toEqual(['compared-with-redis_exporter', 'figures-benchprobets', 'lag', 'lag-1']);
  });
});

describe('one home per fact', () => {
  it('has no paragraph of more than 3 lines in two files', () => {
    const files = new Map(markdownFiles().map((f) => [f, read(f)]));
    expect(sharedParagraphs(files)).toEqual([]);
  });

  it('finds a shared paragraph, however it is wrapped', () => {
    const para = 'one two three\nfour five six\nseven eight\nnine ten';
    const files = new Map([
      ['/a.md', `# A\n\n${para}\n`],
      ['/b.md', '# B\n\none two\nthree four five\nsix  seven eight\nnine ten\n'],
      ['/c.md', `# C\n\n${para}\n`],
    ]);
    expect(sharedParagraphs(files)).toHaveLength(1);
  });
});
