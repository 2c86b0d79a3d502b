/**
 * The driver registry: maps a target URL scheme to the driver that speaks to that datastore.
 * Adding a datastore = its folder in src/drivers (with an index.ts registration) and one line here;
 * the core knows nothing else about it (CONTRIBUTING.md has the whole checklist).
 */
import { registration as etcd } from './etcd';
import { registration as kafka } from './kafka';
import { registration as mongodb } from './mongodb';
import { registration as mysql } from './mysql';
import { registration as nats } from './nats';
import { registration as postgresql } from './postgresql';
import { registration as rabbitmq } from './rabbitmq';
import { registration as redis } from './redis';
import type { DriverRegistration } from './registration';
import type { Driver, DriverOptions } from '../core/model';
import { withPeerCheck } from './shared/peer-check';
import { registration as zookeeper } from './zookeeper';

export type { DriverRegistration } from './registration';

export const DRIVERS: readonly DriverRegistration[] = [
  redis,
  postgresql,
  mysql,
  mongodb,
  zookeeper,
  etcd,
  kafka,
  nats,
  rabbitmq,
];

export function driverForScheme(scheme: string): DriverRegistration | undefined {
  return DRIVERS.find((d) => d.schemes.includes(scheme));
}

export function supportedSchemes(): string[] {
  return DRIVERS.flatMap((d) => d.schemes);
}

/**
 * Makes the registration's driver for one target, wrapped so that a failed connect to a server of
 * another kind says so (shared/peer-check.ts).
 */
export function createDriver(registration: DriverRegistration, options: DriverOptions): Driver {
  return withPeerCheck(registration.create(options), {
    protocol: registration.protocol,
    datastore: registration.replicanteKind,
    target: options.target,
    logger: options.logger,
  });
}
