/**
 * `npm run rules:render -- [--config <file.json|yaml>] [--out <file>]`: renders the rules with the
 * defaults, or with a user config (any subset of scripts/rules/config.ts's settings) merged over them.
 * Without --out the YAML goes to stdout. A bad config is one line on stderr and exit 2.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { mergeConfig } from './config';
import { renderRules } from './render';

function main(argv: string[]): number {
  let configFile: string | undefined;
  let outFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--config') configFile = value();
    else if (flag === '--out') outFile = value();
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write('usage: rules:render [--config <file.json|yaml>] [--out <file>]\n');
      return 0;
    } else throw new Error(`unknown argument ${arg}`);
  }
  const user: unknown = configFile === undefined ? {} : parse(readFileSync(configFile, 'utf8'));
  const yaml = renderRules(mergeConfig(user ?? {}));
  if (outFile === undefined) process.stdout.write(yaml);
  else writeFileSync(outFile, yaml);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`rules:render: ${(err as Error).message}\n`);
  process.exitCode = 2;
}
