/** Registration of the NATS JetStream driver (see ../registration.ts); the driver module loads on first use. */
import type { DriverRegistration } from '../registration';
import { unsupportedParam } from '../shared/url-settings';

type DriverModule = typeof import('./driver');

export const registration: DriverRegistration = {
  name: 'nats',
  schemes: ['nats'],
  // The monitoring port (`http: 8222` in the server config), not the client port 4222.
  defaultPort: 8222,
  // No heartbeat mode: see docs/nats.md "Why no heartbeat mode".
  heartbeat: false,
  protocol: 'http',
  replicanteKind: 'NATS',
  safeUrlParams: [],
  validateTarget: ({ url, username }) =>
    unsupportedParam(url, []) ??
    ((url.pathname || '/') !== '/' ? 'a nats:// target takes no path' : undefined) ??
    (username !== undefined
      ? 'the NATS monitoring endpoint has no authentication; drop the user from the URL'
      : undefined),
  flags: [
    {
      name: 'consumers',
      help: 'Map JetStream consumers as shards too, and count their deliveries as reads (true or false; default true).',
      validate: (v) => (['true', 'false'].includes(v.trim()) ? undefined : 'must be true or false'),
    },
  ],
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
