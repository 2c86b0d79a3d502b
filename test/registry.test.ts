/**
 * The driver registry's declarations against the drivers themselves (no server: drivers are only
 * constructed, never connected).
 *
 * Heartbeat support is declared once, in each registration (src/drivers/<name>/index.ts): the
 * configuration refuses --heartbeat for a driver without it before any driver module is loaded,
 * and the type check demands a HeartbeatStore from a driver that declares it. The other direction
 * (a driver that has a store its registration does not declare) only this test can catch.
 */
import { ConfigError } from '../src/core/errors';
import { parseTarget } from '../src/core/target';
import type { Driver, DriverOptions } from '../src/core/model';
import { DRIVERS, type DriverRegistration } from '../src/drivers/registry';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined };

function options(url: string): DriverOptions {
  return {
    target: parseTarget(url),
    timeoutMs: 100,
    logger: quiet,
    // Flags a driver requires to be constructed (validated at start-up by the configuration).
    extra: { 'broker-id': '1' },
    heartbeat: false,
  };
}

/** A driver for the registration: some refuse a target without a user (RabbitMQ), some one with (NATS). */
function construct(registration: DriverRegistration): Driver {
  const scheme = registration.schemes[0]!;
  try {
    return registration.create(options(`${scheme}://127.0.0.1:1`));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return registration.create(options(`${scheme}://monitor@127.0.0.1:1`));
  }
}

describe('driver registrations', () => {
  test.each(DRIVERS.map((d) => [d.name, d] as const))(
    '%s: a heartbeat store exactly where the registration declares heartbeat support',
    async (_name, registration) => {
      const driver = construct(registration);
      try {
        expect(driver.heartbeat !== undefined).toBe(registration.heartbeat);
        // Reading the record is part of observe() (ShardObservation.heartbeat): the store only writes.
        if (driver.heartbeat) expect(Object.keys(driver.heartbeat)).toEqual(['write']);
      } finally {
        await driver.close();
      }
    },
  );

  test('the drivers that declare heartbeat support', () => {
    expect(DRIVERS.filter((d) => d.heartbeat).map((d) => d.name)).toEqual([
      'redis',
      'postgresql',
      'mysql',
      'zookeeper',
      'etcd',
    ]);
  });
});
