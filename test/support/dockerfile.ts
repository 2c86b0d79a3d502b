/**
 * Reading a Dockerfile and a .dockerignore without Docker (no engine runs on the CI machines), so tests
 * can assert what the image does and rebuild its build context.
 *
 * Only the syntax the project's files use is supported; anything else throws, so a test never
 * silently misreads a file it does not understand.
 */
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface Instruction {
  /** Upper-cased keyword: FROM, RUN, COPY... */
  keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  args: string;
  /** 1-based line of the keyword, for failure messages. */
  line: number;
}

export interface Stage {
  /** The FROM argument (image or earlier stage), e.g. `${NODE_IMAGE}`. */
  from: string;
  /** `AS <name>`, if any. */
  name?: string;
  instructions: Instruction[];
}

/** Instructions in order. Handles `\` continuations and comment lines (also inside continuations). */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let current: { parts: string[]; line: number } | undefined;
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && !current)) return;
    const continued = /\\$/.test(trimmed);
    const body = continued ? trimmed.slice(0, -1).trim() : trimmed;
    if (!current) current = { parts: [], line: i + 1 };
    if (body) current.parts.push(body);
    if (!continued) {
      const joined = current.parts.join(' ');
      const m = /^([A-Za-z]+)\s*(.*)$/.exec(joined);
      if (!m) throw new Error(`Dockerfile line ${current.line}: cannot read "${joined}"`);
      out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!, line: current.line });
      current = undefined;
    }
  });
  if (current) throw new Error(`Dockerfile line ${current.line}: continuation runs past the end`);
  return out;
}

/** Splits the instructions into build stages; instructions before the first FROM (ARG) are dropped. */
export function stages(instructions: Instruction[]): Stage[] {
  const result: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: cannot read FROM ${ins.args}`);
      result.push({ from: m[1]!, name: m[2], instructions: [] });
    } else if (result.length > 0) {
      result[result.length - 1]!.instructions.push(ins);
    }
  }
  return result;
}

/** The JSON array of an exec-form instruction (`ENTRYPOINT ["node", "x"]`), or undefined (shell form). */
export function execForm(args: string): string[] | undefined {
  if (!args.trim().startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
    throw new Error(`not an exec form: ${args}`);
  }
  return parsed as string[];
}

/** `HEALTHCHECK [--option=value ...] CMD <command>` -> options and the command's exec form. */
export function parseHealthcheck(args: string): { options: Record<string, string>; command: string[] } {
  const m = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$/.exec(args);
  if (!m) throw new Error(`HEALTHCHECK not in the form "[--opt=v...] CMD [...]": ${args}`);
  const options: Record<string, string> = {};
  for (const opt of m[1]!.trim().split(/\s+/).filter(Boolean)) {
    const [k, v] = opt.replace(/^--/, '').split('=');
    options[k!] = v!;
  }
  const command = execForm(m[2]!);
  if (!command) throw new Error('HEALTHCHECK CMD must be in exec form (a JSON array): no shell in the image');
  return { options, command };
}

/**
 * A .dockerignore with top-level patterns only (`*`, `name`, `!name`, `name/`, `*.log`): returns a
 * predicate telling whether a top-level entry of the context directory is sent to the build.
 * Docker applies the last matching pattern; a pattern on a directory covers everything inside it.
 */
export function dockerignoreFilter(text: string): (topLevelName: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      if (/[/[\]?]|\*\*/.test(pattern)) {
        throw new Error(
          `.dockerignore pattern "${l}" is beyond what test/support/dockerfile.ts understands ` +
            '(top-level names and * only): extend dockerignoreFilter',
        );
      }
      const re = new RegExp('^' + pattern.split('*').map(escapeRegExp).join('[^/]*') + '$');
      return { negate, re };
    });
  return (name) => {
    let included = true;
    for (const r of rules) if (r.re.test(name)) included = r.negate;
    return included;
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Copies what `docker build` would send as context (per .dockerignore) from `root` into `dest`. */
export function copyBuildContext(root: string, dest: string, ignoreText: string): string[] {
  const included = dockerignoreFilter(ignoreText);
  const names = readdirSync(root).filter(included).sort();
  for (const name of names) cpSync(join(root, name), join(dest, name), { recursive: true });
  return names;
}
