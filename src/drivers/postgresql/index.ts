/** Registration of the postgresql driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'postgresql',
  schemes: ['postgresql', 'postgres'],
  defaultPort: 5432,
  heartbeat: true,
  tls: { mode: { params: { sslmode: 'verify-full' } } },
  protocol: 'postgresql',
  replicanteKind: 'PostgreSQL',
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
