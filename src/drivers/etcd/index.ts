/** Registration of the etcd driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'etcd',
  schemes: ['etcd', 'etcds'],
  defaultPort: 2379,
  heartbeat: true,
  tls: { schemes: ['etcds'], mode: { scheme: 'etcds' } },
  protocol: 'http',
  replicanteKind: 'etcd',
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
