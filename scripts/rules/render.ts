/**
 * Writes rule groups (scripts/rules/rules.ts) as the plain Prometheus rules YAML that ships, with the
 * rules' comments: PromQL as literal blocks, descriptions as folded blocks, so that the file reads like
 * a hand-written one and diffs stay small. test/rules.test.ts checks that parsing the text gives back
 * exactly the rules that were rendered.
 */
import { buildRules, type Rule, type RuleGroup } from './rules';
import type { RulesConfig } from './config';

const HEADER = [
  'Prometheus recording and alerting rules for datastore-exporter, loaded as is by plain Prometheus',
  '(`rule_files`) and copied by the Helm chart. Every alert is documented, with what to do, in',
  'docs/alerts.md; `promtool test rules rules/tests/*.yml` proves each one fires and stays silent.',
  '',
  'GENERATED from scripts/rules/ (a mixin: scripts/rules/config.ts is its configuration block). Do not',
  'edit: change the source or render your own variant with your settings (selectors, thresholds, `for:`):',
  '  npm run rules:render -- --config my-settings.json --out my.rules.yml',
];

/** A YAML scalar on one line: plain when that is unambiguous, else double-quoted (JSON is YAML). */
function scalar(value: string): string {
  const plain =
    /^[A-Za-z0-9(][^\n]*$/.test(value) &&
    !/[:#]\s|\s#|[{}[\],&*!|>'"%@`]|:$|\s$/.test(value) &&
    !/^(true|false|null|yes|no|on|off|~|[-+]?[0-9.]+(e[-+]?[0-9]+)?)$/i.test(value);
  return plain ? value : JSON.stringify(value);
}

/** A folded block (`>-`) of `text`, wrapped on spaces at `width` columns including `pad`. */
function folded(text: string, pad: string, width = 110): string[] {
  if (/\n|\s\s|^\s|\s$/.test(text))
    throw new Error(`cannot fold text with line breaks or runs of spaces: ${text}`);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && pad.length + line.length + 1 + word.length > width) {
      lines.push(pad + line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(pad + line);
  return lines;
}

function ruleLines(rule: Rule): string[] {
  const out: string[] = [];
  for (const c of rule.comment ?? []) out.push(`      #${c === '' ? '' : ` ${c}`}`.trimEnd());
  out.push(rule.record !== undefined ? `      - record: ${rule.record}` : `      - alert: ${rule.alert}`);
  out.push('        expr: |');
  for (const l of rule.expr.split('\n')) out.push(l === '' ? '' : `          ${l}`);
  if (rule.for !== undefined) out.push(`        for: ${rule.for}`);
  if (rule.labels) {
    out.push('        labels:');
    for (const [k, v] of Object.entries(rule.labels)) out.push(`          ${k}: ${scalar(v)}`);
  }
  if (rule.annotations) {
    out.push('        annotations:');
    for (const [k, v] of Object.entries(rule.annotations)) {
      if (k === 'description') out.push(`          ${k}: >-`, ...folded(v, '            '));
      else out.push(`          ${k}: ${scalar(v)}`);
    }
  }
  return out;
}

export function renderGroups(groups: RuleGroup[]): string {
  const out = HEADER.map((l) => `#${l === '' ? '' : ` ${l}`}`);
  out.push('groups:');
  groups.forEach((g, i) => {
    if (i > 0) out.push('');
    out.push(`  - name: ${g.name}`, '    rules:');
    g.rules.forEach((r, j) => {
      if (j > 0 && r.comment) out.push('');
      out.push(...ruleLines(r));
    });
  });
  return `${out.join('\n')}\n`;
}

export function renderRules(config: RulesConfig): string {
  return renderGroups(buildRules(config));
}
