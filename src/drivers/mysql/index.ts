/** Registration of the mysql driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'mysql',
  schemes: ['mysql', 'mariadb'],
  defaultPort: 3306,
  heartbeat: true,
  protocol: 'mysql',
  replicanteKind: 'MySQL',
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
