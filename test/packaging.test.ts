/**
 * The Docker image, checked without a Docker engine (none runs on the CI machines).
 *
 * 1. The Dockerfile itself: multi-stage, production-only dependencies, non-root numeric user, the
 *    default port exposed, a HEALTHCHECK on /healthz, OCI labels, the exporter as ENTRYPOINT.
 * 2. The image's runtime layout, rebuilt step by step the way the Dockerfile builds it: the build
 *    context per .dockerignore, `tsc` (npm run build), `npm pack`, the tarball unpacked, then ONE clean
 *    `npm ci --omit=dev` from the lockfile. The exporter is started from that directory against a real
 *    redis-server (password from a file, as the Helm chart passes it) and must answer datastore_up 1.
 *    This catches a runtime file missing from package.json "files", a runtime import of a dev
 *    dependency, and a .dockerignore that starves the build.
 */
import { execFile, execFileSync, spawnSync, type ExecFileOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_PORT } from '../src/config/flags';
import {
  copyBuildContext,
  dockerignoreFilter,
  execForm,
  parseDockerfile,
  parseHealthcheck,
  stages,
  type Stage,
} from './support/dockerfile';
import { value, type Sample, parseExposition } from './support/metrics-text';
import { freePort, startProcess, tempDir, waitFor, type ServerProcess } from './support/processes';
import { startRedis, type RedisNode } from './support/redis';

const ROOT = resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  files: string[];
  engines: { node: string };
  dependencies: Record<string, string>;
};
/** Lockfile entries: `dev: true` marks a package only the dev dependencies need. */
const lockPackages = (
  JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  }
).packages;
const dockerfileText = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const dockerignoreText = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
const allStages = stages(parseDockerfile(dockerfileText));
const finalStage = allStages[allStages.length - 1]!;

function all(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}
function one(stage: Stage, keyword: string): string {
  const found = all(stage, keyword);
  if (found.length !== 1)
    throw new Error(`expected one ${keyword} in the final stage, found ${found.length}`);
  return found[0]!;
}

describe('Dockerfile', () => {
  test('is multi-stage: the build stage installs dev dependencies and builds; production installs omit dev', () => {
    expect(allStages.length).toBeGreaterThanOrEqual(2);
    const runs = allStages.flatMap((s) => all(s, 'RUN').map((r) => ({ stage: s.name, run: r })));
    // Dev dependencies (typescript) are needed to compile: some stage runs a full `npm ci` and the build.
    expect(runs.some((r) => /\bnpm ci\b/.test(r.run) && !/--omit=dev/.test(r.run))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r.run))).toBe(true);
    // Production dependencies come from the lockfile without dev dependencies.
    expect(runs.some((r) => /\bnpm ci\b.*--omit=dev/.test(r.run))).toBe(true);
    // The final stage installs nothing and copies nothing from the build context: only from stages.
    expect(all(finalStage, 'RUN')).toEqual([]);
    const copies = all(finalStage, 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) expect(c).toMatch(/^--from=\S+\s/);
    // node_modules in the final image come from the production-only stage.
    const depsStage = allStages.find((s) => all(s, 'RUN').some((r) => /--omit=dev/.test(r)))!;
    expect(copies.some((c) => c.includes(`--from=${depsStage.name}`) && /node_modules/.test(c))).toBe(true);
  });

  test('every stage uses the same small base, on the Node.js LTS major that CI tests', () => {
    const arg = parseDockerfile(dockerfileText).find(
      (i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE='),
    );
    const image = /^NODE_IMAGE=node:(\d+)[-.\w]*-(slim|alpine)/.exec(arg?.args ?? '');
    expect(image).not.toBeNull();
    for (const s of allStages) expect(s.from).toBe('${NODE_IMAGE}');
    // The image runs what the suite ran on: the major that .ci/run installs (scripts/install-node.sh).
    const ciNode = /^NODE_VERSION=(\d+)\.\d+\.\d+$/m.exec(
      readFileSync(join(ROOT, 'scripts/install-node.sh'), 'utf8'),
    );
    expect(ciNode).not.toBeNull();
    expect(image![1]).toBe(ciNode![1]);
    // An LTS line (even major), and one that package.json "engines" allows.
    expect(Number(image![1]) % 2).toBe(0);
    const minimum = /^>=(\d+)$/.exec(pkg.engines.node);
    expect(minimum).not.toBeNull();
    expect(Number(image![1])).toBeGreaterThanOrEqual(Number(minimum![1]));
  });

  test('runs as a numeric non-root user (Kubernetes runAsNonRoot cannot verify a user name)', () => {
    const user = one(finalStage, 'USER');
    const m = /^(\d+)(?::(\d+))?$/.exec(user);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    if (m![2] !== undefined) expect(Number(m![2])).toBeGreaterThan(0);
  });

  test('exposes the default port and the entrypoint is the exporter (flags pass through)', () => {
    expect(one(finalStage, 'EXPOSE')).toBe(String(DEFAULT_PORT));
    expect(execForm(one(finalStage, 'ENTRYPOINT'))).toEqual(['node', 'dist/cli.js']);
    expect(all(finalStage, 'CMD')).toEqual([]);
    expect(one(finalStage, 'WORKDIR')).toBe('/app');
    expect(one(finalStage, 'ENV')).toMatch(/\bNODE_ENV=production\b/);
    // No .git in the context: the revision and branch come from the build arguments.
    expect(one(finalStage, 'ENV')).toContain('DATASTORE_EXPORTER_GIT_COMMIT=${REVISION}');
    expect(one(finalStage, 'ENV')).toContain('DATASTORE_EXPORTER_GIT_BRANCH=${BRANCH}');
    expect(all(finalStage, 'ARG')).toEqual(expect.arrayContaining(['REVISION=unknown', 'BRANCH=unknown']));
  });

  test('HEALTHCHECK probes /healthz with node (no curl in the image), with the packaged script', () => {
    const hc = parseHealthcheck(one(finalStage, 'HEALTHCHECK'));
    expect(hc.command).toEqual(['node', 'dist/healthcheck.js']);
    const script = readFileSync(join(ROOT, 'src/healthcheck.ts'), 'utf8');
    expect(script).toContain("path: '/healthz'");
    expect(script).toContain(`DEFAULT_PORT = ${DEFAULT_PORT}`);
    for (const opt of ['interval', 'timeout', 'start-period', 'retries'])
      expect(hc.options[opt]).toBeDefined();
  });

  test('carries the OCI labels, with the version of package.json', () => {
    const labels = all(finalStage, 'LABEL').join(' ');
    for (const key of ['title', 'description', 'version', 'revision', 'created', 'source', 'licenses']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
    expect(labels).toContain('org.opencontainers.image.licenses="Apache-2.0"');
    const version = all(finalStage, 'ARG').find((a) => a.startsWith('VERSION='));
    expect(version).toBe(`VERSION=${pkg.version}`);
  });

  test('.dockerignore keeps secrets, the git history, local builds and dependencies out of the context', () => {
    const included = dockerignoreFilter(dockerignoreText);
    for (const name of ['.env', '.git', 'node_modules', 'dist', 'coverage', 'test', 'helm', '.ci']) {
      expect({ name, included: included(name) }).toEqual({ name, included: false });
    }
    for (const name of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) {
      expect({ name, included: included(name) }).toEqual({ name, included: true });
    }
    // Whatever the package ships must be in the context, or `npm pack` in the image silently drops it
    // (dist and build-info.json excepted: the build stage writes them).
    for (const name of pkg.files.filter((f) => f !== 'dist' && f !== 'build-info.json')) {
      expect({ name, included: included(name) }).toEqual({ name, included: true });
    }
  });
});

describe('the image layout: packed package + production-only install, run against real Redis', () => {
  const work = tempDir('packaging');
  const app = join(work.path, 'app');
  let packedFiles: string[] = [];
  let redis: RedisNode | undefined;
  let exporter: ServerProcess | undefined;
  let port = 0;
  const password = 'pack-test-secret';

  const scrape = async (): Promise<Sample[]> => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
    return parseExposition(await res.text());
  };

  /** Set by afterAll: a beforeAll that overran its timeout must not start servers nobody stops. */
  let finished = false;

  /**
   * Runs a build step without blocking the event loop (so jest's timeout can fire) and with its own
   * deadline, so a stalled registry fails the test with a clear message instead of hanging it.
   */
  const step = (what: string, cmd: string, args: string[], options: ExecFileOptions, timeoutMs: number) =>
    new Promise<string>((ok, fail) => {
      execFile(
        cmd,
        args,
        { ...options, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (err) fail(new Error(`${what} failed (${err.message}):\n${String(stderr).slice(-3000)}`));
          else ok(String(stdout));
        },
      );
    });

  beforeAll(async () => {
    // Build stage: the context as .dockerignore sends it; `npm ci` (dev deps) stands in as a link to the
    // repository's node_modules, the only deviation from the image (it keeps this to ONE registry install).
    const context = join(work.path, 'context');
    mkdirSync(context);
    copyBuildContext(ROOT, context, dockerignoreText);
    symlinkSync(join(ROOT, 'node_modules'), join(context, 'node_modules'), 'dir');
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    await step(
      'npm run build (tsc)',
      process.execPath,
      [tsc, '-p', 'tsconfig.build.json'],
      { cwd: context },
      180000,
    );
    const packJson = await step(
      'npm pack',
      'npm',
      ['pack', '--json', '--pack-destination', work.path],
      { cwd: context },
      60000,
    );
    const packed = (JSON.parse(packJson) as { filename: string; files: { path: string }[] }[])[0]!;
    packedFiles = packed.files.map((f) => f.path).sort();
    mkdirSync(app);
    await step(
      'tar',
      'tar',
      ['-xzf', join(work.path, packed.filename), '-C', app, '--strip-components=1'],
      {},
      30000,
    );

    // Runtime: production dependencies from the lockfile (the Dockerfile's deps stage), nothing else.
    // --prefer-offline only spares the registry round trips for packages already in the npm cache; the
    // lockfile's integrity hashes make the result the same as the image's.
    writeFileSync(join(app, 'package-lock.json'), readFileSync(join(ROOT, 'package-lock.json')));
    await step(
      'npm ci --omit=dev',
      'npm',
      ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'],
      { cwd: app, env: { ...process.env, NODE_ENV: 'production' } },
      420000,
    );
    if (finished) return;

    redis = await startRedis(await freePort(), ['--requirepass', password]);
    if (finished) {
      await redis.stop();
      return;
    }
    const passwordFile = join(work.path, 'redis-password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o400 });
    port = await freePort();
    exporter = startProcess(
      process.execPath,
      [
        join(app, 'dist/cli.js'),
        '--target',
        `redis://127.0.0.1:${redis.port}`,
        '--web.listen-address',
        `127.0.0.1:${port}`,
        '--collect.interval',
        '1s',
        '--collect.timeout',
        '800ms',
      ],
      { cwd: app, env: { NODE_ENV: 'production', DATASTORE_PASSWORD_FILE: passwordFile } },
    );
    await waitFor(
      'the packaged exporter to report datastore_up 1',
      async () => {
        if (exporter!.exited()) throw new Error(`exporter exited: ${exporter!.output()}`);
        return value(await scrape(), 'datastore_up') === 1;
      },
      30000,
      200,
    );
  }, 720000);

  afterAll(async () => {
    finished = true;
    await exporter?.stop();
    await redis?.stop();
    work.remove();
  });

  test('the package holds the compiled exporter and the runtime assets, not the sources or tests', () => {
    expect(packedFiles).toContain('package.json');
    expect(packedFiles).toContain('dist/cli.js');
    expect(packedFiles.filter((f) => /^(src|test|helm|\.ci)\//.test(f))).toEqual([]);
    expect(packedFiles.filter((f) => /(^|\/)\.env$/.test(f))).toEqual([]);
  });

  test('the package ships the alert rules and every dashboard of the repository', () => {
    const rules = join(ROOT, 'rules/datastore-exporter.rules.yml');
    expect({ rulesInRepo: existsSync(rules) }).toEqual({ rulesInRepo: true });
    expect(packedFiles).toContain('rules/datastore-exporter.rules.yml');
    const dashboards = existsSync(join(ROOT, 'dashboards'))
      ? readdirSync(join(ROOT, 'dashboards')).filter((f) => f.endsWith('.json'))
      : [];
    expect(dashboards.length).toBeGreaterThan(0);
    for (const d of dashboards) expect(packedFiles).toContain(`dashboards/${d}`);
  });

  test('node_modules holds every production dependency and no dev dependency', () => {
    for (const dep of Object.keys(pkg.dependencies)) {
      expect({ dep, installed: existsSync(join(app, 'node_modules', dep, 'package.json')) }).toEqual({
        dep,
        installed: true,
      });
    }
    // Every package the lockfile marks dev-only (typescript, jest, eslint... and what they pull in) is
    // absent. (@types/node is not among them: a production dependency needs it.)
    const devOnly = Object.entries(lockPackages)
      .filter(([path, entry]) => path.startsWith('node_modules/') && entry.dev === true)
      .map(([path]) => path);
    expect(devOnly).toContain('node_modules/typescript');
    expect(devOnly.filter((path) => existsSync(join(app, path)))).toEqual([]);
  });

  test('--version reads the version from the packed package.json', () => {
    const out = execFileSync(process.execPath, [join(app, 'dist/cli.js'), '--version'], {
      cwd: app,
      encoding: 'utf8',
    });
    expect(out).toContain(`datastore-exporter, version ${pkg.version} (branch: `);
  });

  test('/metrics answers datastore_up 1 with the model metrics, the password read from a file', async () => {
    const s = await scrape();
    expect(value(s, 'datastore_up')).toBe(1);
    expect(value(s, 'datastore_node_info', { datastore: 'redis' })).toBe(1);
    expect(value(s, 'datastore_shard_role', { shard_id: 'default', role: 'primary' })).toBe(1);
    // The process metrics a production exporter exposes (off in the in-process tests).
    expect(s.some((x) => x.name === 'process_resident_memory_bytes')).toBe(true);
  });

  test('/healthz and /ready answer 200', async () => {
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);
  });

  test("the Dockerfile's HEALTHCHECK command passes against it and fails on a dead port", async () => {
    const { command } = parseHealthcheck(one(finalStage, 'HEALTHCHECK'));
    const run = (listen: string): number | null =>
      spawnSync(command[0] === 'node' ? process.execPath : command[0]!, command.slice(1), {
        cwd: app,
        env: { PATH: process.env.PATH, DATASTORE_WEB_LISTEN_ADDRESS: listen },
        timeout: 15000,
      }).status;
    expect(run(`:${port}`)).toBe(0);
    expect(run(`127.0.0.1:${await freePort()}`)).toBe(1);
  });

  test('SIGTERM (docker stop) shuts it down cleanly with exit code 0', async () => {
    const proc = exporter!;
    const exitCode = new Promise<number | null>((r) => proc.child.once('exit', (code) => r(code)));
    await proc.stop(10000);
    expect(await exitCode).toBe(0);
  });
});
