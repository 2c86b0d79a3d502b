/** Registration of the redis driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'redis',
  schemes: ['redis', 'rediss'],
  defaultPort: 6379,
  heartbeat: true,
  tls: { schemes: ['rediss'], mode: { scheme: 'rediss' } },
  protocol: 'redis',
  replicanteKind: 'Redis',
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
