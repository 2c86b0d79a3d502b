#!/usr/bin/env node
/**
 * Command-line entry point. Configuration problems print ONE line and exit 2, without a stack trace.
 */
// First: it may restart the process with its V8 setting before anything else is loaded.
import './runtime-flags';
// Before prom-client loads: keeps @opentelemetry/api unloaded unless something uses it.
import './http/deferred-tracing';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from './core/errors';
import { helpText, loadServerConfig, unknownEnvironment } from './config/flags';
import { startServer } from './exporter';
import { createLogger } from './core/logger';
import { versionInfo, versionText } from './core/version';

/**
 * Loads ./.env (and an encrypted .env.vault, when DOTENV_KEY is set) into the environment. Without
 * either, dotenv would do nothing: it is then not loaded at all, which keeps it out of memory.
 */
function loadDotenv(): void {
  if (!existsSync(resolve('.env')) && !process.env.DOTENV_KEY) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('dotenv') as typeof import('dotenv')).config({ quiet: true });
}

async function main(): Promise<number> {
  loadDotenv();
  let config;
  try {
    config = loadServerConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`datastore-exporter: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (config === 'help') {
    process.stdout.write(helpText() + '\n');
    return 0;
  }
  if (config === 'version') {
    process.stdout.write(versionText() + '\n');
    return 0;
  }

  const logger = createLogger(config.logLevel, config.logFormat);
  for (const unknown of unknownEnvironment(process.env)) {
    logger.warn('environment variable ignored: no flag reads it', {
      name: unknown.name,
      did_you_mean: unknown.suggestions.join(' or ') || undefined,
    });
  }
  const build = versionInfo();
  logger.info('starting datastore-exporter', {
    version: build.version,
    revision: build.revision,
    branch: build.branch,
    node: build.nodejsVersion,
    target: config.target?.redactedUrl,
    interval: config.target ? `${config.collectIntervalSeconds}s` : undefined,
    probe_allowed_targets: config.probe?.config.allowlist.size,
    probe_auth_modules: config.probe ? config.probe.config.authModules.size : undefined,
  });
  let exporter;
  try {
    exporter = await startServer(config, logger);
  } catch (err) {
    // e.g. the listen address is taken: one line, non-zero exit.
    process.stderr.write(`datastore-exporter: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const running = exporter;
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string): void => {
      logger.info('shutting down', { signal });
      void running.stop().finally(resolve);
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`datastore-exporter: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
