/** Registration of the mysql driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';
import { decodedPath, repeatedParam, unsupportedParam } from '../shared/url-settings';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'mysql',
  schemes: ['mysql', 'mariadb'],
  defaultPort: 3306,
  heartbeat: true,
  protocol: 'mysql',
  replicanteKind: 'MySQL',
  safeUrlParams: [],
  validateTarget: ({ url }) => {
    const path = decodedPath(url);
    return unsupportedParam(url, []) ?? repeatedParam(url) ?? ('problem' in path ? path.problem : undefined);
  },
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
