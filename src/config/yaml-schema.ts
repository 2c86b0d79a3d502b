/**
 * What the YAML configuration files (--web.config.file in config/web-config.ts, --probe.config-file
 * in probe/config.ts) check the same way: the text is YAML, a section is a mapping, and a key is one
 * the section knows (a misspelt key must be an error, never silently ignored). Each file words its
 * own messages around these; every failure is a ConfigError (one line on stderr, exit 2).
 */
import { ConfigError } from '../core/errors';

export type YamlMapping = Record<string, unknown>;

/** A YAML mapping (not a list, a scalar or null). */
export function isPlainObject(value: unknown): value is YamlMapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first key of `obj` that is not in `allowed`, or undefined when all are known. */
export function unknownKey(obj: YamlMapping, allowed: readonly string[]): string | undefined {
  return Object.keys(obj).find((key) => !allowed.includes(key));
}

/**
 * Parses YAML text; a syntax error is a ConfigError `<where>: not valid YAML: <first line>`.
 * The `yaml` package (72 modules, ~3 MiB resident) is loaded on the first file parsed, never by an
 * exporter started with flags only: what runs beside every datastore node carries nothing it does
 * not use.
 */
export function parseYamlDocument(text: string, where: string): unknown {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('yaml') as typeof import('yaml')).parse(text);
  } catch (err) {
    // yaml's messages span several lines (with a code frame); the first says what and where.
    throw new ConfigError(
      `${where}: not valid YAML: ${String((err as Error)?.message ?? err).split('\n')[0]}`,
    );
  }
}
