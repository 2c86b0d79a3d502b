/** Registration of the RabbitMQ quorum queue driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'rabbitmq',
  schemes: ['rabbitmq'],
  // The management plugin's port; the Prometheus plugin's is the URL parameter prometheus_port (15692).
  defaultPort: 15672,
  // No heartbeat mode: see docs/rabbitmq.md "Why no heartbeat mode".
  heartbeat: false,
  protocol: 'http',
  replicanteKind: 'RabbitMQ',
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
