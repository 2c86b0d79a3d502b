/**
 * The image's health check (src/healthcheck.ts, HEALTHCHECK in the Dockerfile) against real exporters
 * serving plain HTTP, HTTPS with basic auth and a rate limit, and HTTPS requiring a client certificate:
 * it follows the exporter's --web.listen-address / --web.config.file (flags of the main process, else
 * the environment) and passes in each case, and fails on a dead port. The Dockerfile's command itself
 * is run against the packed image layout in test/packaging.test.ts.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { check, flagValue, healthTarget } from '../src/healthcheck';
import { makeCertificates } from './support/etcd';
import { freePort, tempDir } from './support/processes';
import { startProbeModeExporter, writeProbeConfig, type ProbeModeExporter } from './support/probe-exporter';

describe('where the health check looks', () => {
  test('flags of the main process win over the environment; --flag=value and --flag value', () => {
    expect(flagValue(['node', 'dist/cli.js', '--web.listen-address', ':9999'], 'web.listen-address')).toBe(
      ':9999',
    );
    expect(flagValue(['--web.listen-address=127.0.0.1:7000'], 'web.listen-address')).toBe('127.0.0.1:7000');
    expect(healthTarget(['--web.listen-address=:7001'], { DATASTORE_WEB_LISTEN_ADDRESS: ':7002' }).port).toBe(
      7001,
    );
    expect(healthTarget([], { DATASTORE_WEB_LISTEN_ADDRESS: '[::]:7002' }).port).toBe(7002);
    expect(healthTarget(['/sbin/docker-init', '--', 'node', 'dist/cli.js'], {})).toEqual({ port: 9860 });
  });

  test('several --web.listen-address: the first one reachable on 127.0.0.1', () => {
    const listen = (...addresses: string[]): number =>
      healthTarget(
        addresses.flatMap((a) => ['--web.listen-address', a]),
        {},
      ).port;
    expect(listen('10.0.0.5:9100', '127.0.0.1:9101')).toBe(9101);
    expect(listen('10.0.0.5:9100', ':9102', '127.0.0.1:9103')).toBe(9102);
    expect(listen('[::]:9104', '10.0.0.5:9100')).toBe(9104);
    expect(listen('10.0.0.5:9100', '10.0.0.6:9105')).toBe(9100);
  });

  test('an unreadable web config file is an error (the check then fails)', () => {
    expect(() => healthTarget(['--web.config.file', '/nonexistent/web.yml'], {})).toThrow(/ENOENT/);
  });
});

describe('against real exporters', () => {
  const dir = tempDir('healthcheck');
  const pki = makeCertificates(dir.path);
  const probeConfig = writeProbeConfig(dir.path, { allowed_targets: ['redis://127.0.0.1:*'] });
  const exporters: ProbeModeExporter[] = [];
  const webFile = (name: string, config: object): string => {
    const file = join(dir.path, name);
    writeFileSync(file, stringify(config));
    return file;
  };
  const start = async (webConfig?: string): Promise<ProbeModeExporter> => {
    const e = await startProbeModeExporter([
      '--probe.config-file',
      probeConfig,
      ...(webConfig ? ['--web.config.file', webConfig] : []),
    ]);
    exporters.push(e);
    return e;
  };

  afterAll(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    dir.remove();
  });

  test('plain HTTP: passes, and fails on a dead port', async () => {
    const e = await start();
    expect(await check(healthTarget([`--web.listen-address=127.0.0.1:${e.port}`], {}))).toBe(true);
    expect(await check({ port: await freePort() })).toBe(false);
  });

  test('HTTPS with basic auth and a rate limit, from the web config of the flags', async () => {
    const file = webFile('tls.yml', {
      tls_server_config: { cert_file: pki.certFile, key_file: pki.keyFile },
      basic_auth_users: { prometheus: bcrypt.hashSync('s3cret', 4) },
      rate_limit: { interval: '1m', burst: 3 },
    });
    const e = await start(file);
    // What the image's old check did, plain HTTP to /healthz, gets no answer from a TLS listener.
    await expect(fetch(`http://127.0.0.1:${e.port}/healthz`)).rejects.toThrow();
    const argv = ['node', 'dist/cli.js', '--web.listen-address', `:${e.port}`, '--web.config.file', file];
    expect(await check(healthTarget(argv, {}))).toBe(true);
    // /healthz takes no token: checks beyond the burst of 3 still get their 200.
    for (let i = 0; i < 5; i++) expect(await check(healthTarget(argv, {}))).toBe(true);
  });

  test('HTTPS requiring a client certificate: an answered handshake passes; a dead port does not', async () => {
    const file = webFile('mtls.yml', {
      tls_server_config: {
        cert_file: pki.certFile,
        key_file: pki.keyFile,
        client_auth_type: 'RequireAndVerifyClientCert',
        client_ca_file: pki.caFile,
      },
    });
    const e = await start(file);
    expect(
      await check(
        healthTarget([], { DATASTORE_WEB_LISTEN_ADDRESS: `:${e.port}`, DATASTORE_WEB_CONFIG_FILE: file }),
      ),
    ).toBe(true);
    expect(
      await check(
        healthTarget([], {
          DATASTORE_WEB_LISTEN_ADDRESS: `:${await freePort()}`,
          DATASTORE_WEB_CONFIG_FILE: file,
        }),
      ),
    ).toBe(false);
  });
});
