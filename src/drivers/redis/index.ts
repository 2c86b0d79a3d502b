/** Registration of the redis driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';
import { repeatedParam, unsupportedParam } from '../shared/url-settings';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'redis',
  schemes: ['redis', 'rediss'],
  defaultPort: 6379,
  heartbeat: true,
  tls: { schemes: ['rediss'], mode: { scheme: 'rediss' } },
  protocol: 'redis',
  replicanteKind: 'Redis',
  safeUrlParams: [],
  validateTarget: ({ url }) =>
    unsupportedParam(url, []) ??
    repeatedParam(url) ??
    // The database number, as redis-cli -n takes it; anything else would silently mean database 0.
    (/^\/?([0-9]{1,5})?$/.test(url.pathname)
      ? undefined
      : 'the URL path must be a database number (redis://host:6379/2) or nothing'),
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
