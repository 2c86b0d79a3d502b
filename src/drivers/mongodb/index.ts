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
  // Connection string options that hold no secret. Not among them: authMechanismProperties (may carry
  // AWS_SESSION_TOKEN), tlsCertificateKeyFilePassword, proxyPassword, and any option added later.
  safeUrlParams: [
    'appName',
    'authMechanism',
    'authSource',
    'compressors',
    'connectTimeoutMS',
    'directConnection',
    'heartbeatFrequencyMS',
    'loadBalanced',
    'localThresholdMS',
    'maxIdleTimeMS',
    'maxPoolSize',
    'minPoolSize',
    'readConcernLevel',
    'readPreference',
    'readPreferenceTags',
    'replicaSet',
    'retryReads',
    'retryWrites',
    'serverSelectionTimeoutMS',
    'socketTimeoutMS',
    'ssl',
    'tls',
    'tlsAllowInvalidCertificates',
    'tlsAllowInvalidHostnames',
    'tlsCAFile',
    'tlsCertificateKeyFile',
    'tlsCRLFile',
    'tlsInsecure',
    'w',
    'wtimeoutMS',
    'journal',
    'zlibCompressionLevel',
  ],
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  validateTarget: (target) => (require('./driver') as DriverModule).mongoUrlProblem(target),
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  create: (options) => (require('./driver') as DriverModule).createDriver(options),
};
