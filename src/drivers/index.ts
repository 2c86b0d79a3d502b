/**
 * The driver registry: maps a target URL scheme to the driver that speaks to that datastore.
 * Adding a datastore = one file in src/drivers and one entry here; the core knows nothing else about it.
 */
import type { DriverFactory } from '../model';

export interface DriverRegistration {
  /** The driver's name, used as the `datastore` label and as the prefix of its own flags. */
  name: string;
  /** URL schemes (without ':') that select this driver. */
  schemes: string[];
  /** Port used when the target URL gives none. */
  defaultPort: number;
  /** Whether the driver implements heartbeat mode (Driver.heartbeat), checked when --heartbeat is set. */
  heartbeat?: boolean;
  /** Driver-specific flags, `--<name>.<flag>`, passed to the driver in DriverOptions.extra. */
  flags?: {
    name: string;
    help: string;
    /** Checks the value at start-up; returns what is wrong with it, or undefined when it is fine. */
    validate?: (value: string) => string | undefined;
  }[];
  create: DriverFactory;
}

/** What every driver module exports. */
export interface DriverModule {
  createDriver: DriverFactory;
}

/**
 * Loads a driver module only when its scheme is used, so an exporter for Redis never loads the
 * MongoDB, Kafka or etcd client libraries (start-up time and memory stay those of one driver).
 */
function lazy(load: () => DriverModule): DriverFactory {
  return (options) => load().createDriver(options);
}

/* eslint-disable @typescript-eslint/no-require-imports */
export const DRIVERS: readonly DriverRegistration[] = [
  {
    name: 'redis',
    schemes: ['redis', 'rediss'],
    defaultPort: 6379,
    heartbeat: true,
    create: lazy(() => require('./redis')),
  },
  {
    name: 'postgresql',
    schemes: ['postgresql', 'postgres'],
    defaultPort: 5432,
    heartbeat: true,
    create: lazy(() => require('./postgresql')),
  },
  {
    name: 'mysql',
    schemes: ['mysql', 'mariadb'],
    defaultPort: 3306,
    heartbeat: true,
    create: lazy(() => require('./mysql')),
  },
  { name: 'mongodb', schemes: ['mongodb'], defaultPort: 27017, create: lazy(() => require('./mongodb')) },
  {
    name: 'zookeeper',
    schemes: ['zookeeper'],
    defaultPort: 2181,
    heartbeat: true,
    create: lazy(() => require('./zookeeper')),
  },
  {
    name: 'etcd',
    schemes: ['etcd', 'etcds'],
    defaultPort: 2379,
    heartbeat: true,
    create: lazy(() => require('./etcd')),
  },
  {
    name: 'kafka',
    schemes: ['kafka'],
    defaultPort: 9092,
    flags: [
      {
        name: 'broker-id',
        help: 'Broker id of the local broker (default: found from cluster metadata).',
        validate: (v) =>
          /^\d+$/.test(v.trim()) ? undefined : 'must be a broker id (a non-negative integer)',
      },
    ],
    create: lazy(() => require('./kafka')),
  },
];
/* eslint-enable @typescript-eslint/no-require-imports */

export function driverForScheme(scheme: string): DriverRegistration | undefined {
  return DRIVERS.find((d) => d.schemes.includes(scheme));
}

export function supportedSchemes(): string[] {
  return DRIVERS.flatMap((d) => d.schemes);
}
