/**
 * What a driver folder declares about its datastore (src/drivers/<name>/index.ts). Every
 * per-datastore fact the rest of the exporter needs lives here, so the core, the probe service and
 * the JSON APIs never name a datastore.
 */
import type { DriverFactory, DriverOptions, HeartbeatDriver, Target } from '../core/model';
import type { PeerProtocol } from './shared/peer-check';

/** How an auth module's `tls: true` turns a plain target URL into this driver's TLS form. */
export interface TlsUrlMode {
  /** The TLS scheme to switch to (e.g. redis -> rediss). */
  scheme?: string;
  /** URL parameters that switch the driver's client to TLS (e.g. sslmode=verify-full). */
  params?: Record<string, string>;
}

export interface DriverFlag {
  name: string;
  help: string;
  /** Checks the value at start-up; returns what is wrong with it, or undefined when it is fine. */
  validate?: (value: string) => string | undefined;
}

interface RegistrationFacts {
  /** The driver's name, used as the `datastore` label and as the prefix of its own flags. */
  name: string;
  /** URL schemes (without ':') that select this driver. */
  schemes: string[];
  /** Port used when the target URL gives none. */
  defaultPort: number;
  /**
   * TLS for /probe auth modules: schemes that already mean TLS, and how to switch a plain URL to
   * TLS. A driver without `tls` has no TLS support: such a module is refused, never sent in clear.
   */
  tls?: { schemes?: string[]; mode: TlsUrlMode };
  /**
   * The wire protocol, where shared/peer-check.ts can recognise it: a failed connect then says when
   * the server at the target's port speaks another one (a PostgreSQL URL at a Redis port).
   */
  protocol?: PeerProtocol;
  /** Replicante's `kind` for this datastore (its own agents' spelling where one existed). */
  replicanteKind: string;
  /** Driver-specific flags, `--<name>.<flag>`, passed to the driver in DriverOptions.extra. */
  flags?: DriverFlag[];
  /**
   * URL parameters whose values may be printed (logs, errors, labels), compared case-insensitively.
   * The value of every other parameter is shown as REDACTED: a parameter is a secret until its
   * driver says otherwise.
   */
  safeUrlParams?: readonly string[];
  /**
   * Checks the target's driver settings when the target is parsed, i.e. at start-up for --target and
   * before any connection for /probe: URL parameters, the files they name, the path. Returns what is
   * wrong (one line, no secret), or undefined. Without it, anything the URL carries is accepted.
   */
  validateTarget?: (target: Target) => string | undefined;
}

/**
 * `create` makes a driver. Implementations load their module on first use (`require('./driver')`
 * typed as `typeof import('./driver')`), so an exporter for Redis never loads the MongoDB, Kafka or
 * etcd client libraries, and a renamed export still fails the type check.
 *
 * `heartbeat` is THE declaration of heartbeat support (--heartbeat is refused without it, before any
 * driver is loaded). Declaring it makes the type check demand a driver with a HeartbeatStore;
 * test/registry.test.ts fails if a driver has one without declaring it.
 */
export type DriverRegistration = RegistrationFacts &
  (
    | { heartbeat: true; create: (options: DriverOptions) => HeartbeatDriver }
    | { heartbeat: false; create: DriverFactory }
  );
