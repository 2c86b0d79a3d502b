/** Registration of the etcd driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';
import { repeatedParam, unreadableFile, unsupportedParam } from '../shared/url-settings';

/** TLS files, named like etcdctl's flags: `etcds://host:2379?cacert=ca.pem&cert=c.pem&key=c-key.pem`. */
export const TLS_PARAMS = ['cacert', 'cert', 'key'] as const;

function etcdUrlProblem(url: URL, scheme: string): string | undefined {
  const params = url.searchParams;
  if (scheme !== 'etcds' && url.search) return `${TLS_PARAMS.join('/')} need the etcds:// (https) scheme`;
  if (params.has('cert') !== params.has('key')) return 'cert and key go together (a client certificate)';
  for (const name of TLS_PARAMS) {
    const path = params.get(name);
    const problem = path === null ? undefined : unreadableFile(name, path);
    if (problem) return problem;
  }
  return undefined;
}

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'etcd',
  schemes: ['etcd', 'etcds'],
  defaultPort: 2379,
  heartbeat: true,
  tls: { schemes: ['etcds'], mode: { scheme: 'etcds' } },
  protocol: 'http',
  replicanteKind: 'etcd',
  // File paths, not their content.
  safeUrlParams: TLS_PARAMS,
  validateTarget: ({ url, scheme }) =>
    unsupportedParam(url, TLS_PARAMS) ?? repeatedParam(url) ?? etcdUrlProblem(url, scheme),
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
