/**
 * The driver registry: maps a target URL scheme to the driver that speaks to that datastore.
 * Adding a datastore = one file in src/drivers and one entry here; the core knows nothing else about it.
 */
import type { DriverFactory } from '../model';
import { createRedisDriver } from './redis';

export interface DriverRegistration {
  /** The driver's name, used as the `datastore` label and as the prefix of its own flags. */
  name: string;
  /** URL schemes (without ':') that select this driver. */
  schemes: string[];
  /** Port used when the target URL gives none. */
  defaultPort: number;
  /** Driver-specific flags, `--<name>.<flag>`, passed to the driver in DriverOptions.extra. */
  flags?: { name: string; help: string }[];
  create: DriverFactory;
}

export const DRIVERS: readonly DriverRegistration[] = [
  { name: 'redis', schemes: ['redis', 'rediss'], defaultPort: 6379, create: createRedisDriver },
];

export function driverForScheme(scheme: string): DriverRegistration | undefined {
  return DRIVERS.find((d) => d.schemes.includes(scheme));
}

export function supportedSchemes(): string[] {
  return DRIVERS.flatMap((d) => d.schemes);
}
