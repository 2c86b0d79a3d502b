/** Registration of the RabbitMQ quorum queue driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';
import { repeatedParam, unsupportedParam } from '../shared/url-settings';

/** `?prometheus_port=`: where the Prometheus plugin listens (default 15692). */
const PARAMS = ['prometheus_port'] as const;

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
  safeUrlParams: PARAMS,
  validateTarget: ({ url, username }) => {
    const port = url.searchParams.get('prometheus_port');
    return (
      unsupportedParam(url, PARAMS) ??
      repeatedParam(url) ??
      (port !== null && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)
        ? 'prometheus_port must be a TCP port (1-65535)'
        : undefined) ??
      (username === undefined
        ? 'a rabbitmq:// target needs a management user (rabbitmq://monitor@host:15672; see docs/rabbitmq.md)'
        : undefined)
    );
  },
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
