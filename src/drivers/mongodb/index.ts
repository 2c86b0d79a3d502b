/** Registration of the mongodb driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'mongodb',
  schemes: ['mongodb'],
  defaultPort: 27017,
  heartbeat: false,
  tls: { mode: { params: { tls: 'true' } } },
  replicanteKind: 'MongoDB',
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
