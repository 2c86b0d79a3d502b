/**
 * The driver registry's declarations against the drivers themselves (no server: drivers are only
 * constructed, never connected).
 *
 * Heartbeat support is declared once, in each registration (src/drivers/<name>/index.ts): the
 * configuration refuses --heartbeat for a driver without it before any driver module is loaded,
 * and the type check demands a HeartbeatStore from a driver that declares it. The other direction
 * (a driver that has a store its registration does not declare) only this test can catch.
 */
import { parseTarget } from '../src/core/target';
import type { DriverOptions } from '../src/core/model';
import { DRIVERS } from '../src/drivers/registry';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined };

function options(scheme: string): DriverOptions {
  return {
    target: parseTarget(`${scheme}://127.0.0.1:1`),
    timeoutMs: 100,
    logger: quiet,
    // Flags a driver requires to be constructed (validated at start-up by the configuration).
    extra: { 'broker-id': '1' },
    heartbeat: false,
  };
}

describe('driver registrations', () => {
  test.each(DRIVERS.map((d) => [d.name, d] as const))(
    '%s: a heartbeat store exactly where the registration declares heartbeat support',
    async (_name, registration) => {
      const driver = registration.create(options(registration.schemes[0]!));
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
