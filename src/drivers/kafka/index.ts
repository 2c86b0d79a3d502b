/** Registration of the kafka driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';
import { repeatedParam, unsupportedParam } from '../shared/url-settings';
import { kafkaUrlProblem } from './parse';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'kafka',
  schemes: ['kafka'],
  defaultPort: 9092,
  heartbeat: false,
  tls: { mode: { params: { tls: 'true' } } },
  replicanteKind: 'Kafka',
  safeUrlParams: ['tls', 'sasl'],
  validateTarget: ({ url }) =>
    unsupportedParam(url, ['tls', 'sasl']) ?? repeatedParam(url) ?? kafkaUrlProblem(url),
  flags: [
    {
      name: 'broker-id',
      help: 'Broker id of the local broker (default: found from cluster metadata).',
      validate: (v) => (/^\d+$/.test(v.trim()) ? undefined : 'must be a broker id (a non-negative integer)'),
    },
  ],
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
