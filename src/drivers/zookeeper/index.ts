/** Registration of the zookeeper driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';
import { unsupportedParam } from '../shared/url-settings';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'zookeeper',
  schemes: ['zookeeper'],
  defaultPort: 2181,
  heartbeat: true,
  replicanteKind: 'Zookeeper',
  safeUrlParams: [],
  validateTarget: ({ url }) => unsupportedParam(url, []),
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
