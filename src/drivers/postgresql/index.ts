/** Registration of the postgresql driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';
import { postgresUrlProblem, URL_PARAMS } from './connection';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'postgresql',
  schemes: ['postgresql', 'postgres'],
  defaultPort: 5432,
  heartbeat: true,
  tls: { mode: { params: { sslmode: 'verify-full' } } },
  protocol: 'postgresql',
  replicanteKind: 'PostgreSQL',
  // A socket directory, an sslmode and a CA file path: no secrets (libpq's sslpassword is not taken).
  safeUrlParams: URL_PARAMS,
  validateTarget: postgresUrlProblem,
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
