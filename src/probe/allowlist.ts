/**
 * The allowlist of /probe targets (`allowed_targets` in --probe.config-file). Without it, /probe would
 * let anyone who can reach the exporter make it connect anywhere (an SSRF relay with the exporter's
 * network position and credentials), so nothing is allowed unless a pattern says so.
 *
 * A pattern is `scheme://host:port`. A `*` in the host matches within ONE label (never a '.', ':' or
 * '/'; a host that is only `*` allows every host), and in an IPv4 pattern (`10.0.0.*`) only an octet's digits: otherwise `10.0.0.*` would also
 * allow `10.0.0.1.attacker.example`, a DNS name that resolves wherever its owner likes. A `*` port
 * matches any port. A pattern without a port means the driver's default port. Patterns match the
 * target as the URL parser normalises it (host lower-cased, IPv6 in brackets), never the raw text of
 * the query string; numeric hosts other than canonical IPv4 (`010.0.0.1`, `0x0a.1`) are refused
 * before matching (probe/target.ts). The target's path (Redis database number, PostgreSQL database
 * name) is not part of the match.
 */
import { ConfigError } from '../core/errors';
import { driverForScheme, supportedSchemes } from '../drivers/registry';

/** Where a probe would connect: what the allowlist decides on, and the safe-to-log part of a target. */
export interface TargetAddress {
  scheme: string;
  /** As the WHATWG URL parser gives it: lower-cased, IPv6 in brackets. */
  host: string;
  port: number;
}

export function addressText(address: TargetAddress): string {
  return `${address.scheme}://${address.host}:${address.port}`;
}

interface CompiledPattern {
  text: string;
  scheme: string;
  host: RegExp;
  port: RegExp;
}

const PATTERN = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-f:.*]+\]|[a-z0-9_.*-]+)(?::([0-9]+|\*))?\/?$/i;

function globToRegExp(glob: string, star: string): RegExp {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join(star);
  return new RegExp(`^${body}$`);
}

/**
 * What `*` may stand for in a host pattern: anything for a lone `*` (the operator allows every host),
 * an octet in an IPv4 pattern, else part of one label.
 */
function hostStar(host: string): string {
  if (host === '*') return '.+';
  return /^[0-9*]+(\.[0-9*]+){3}$/.test(host) ? '[0-9]{1,3}' : '[^.:/\\[\\]]*';
}

/** A host pattern without globs, normalised exactly as a target's host would be. */
function normaliseHost(host: string): string {
  if (host.includes('*')) return host.toLowerCase();
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return host.toLowerCase();
  }
}

function compile(text: string, where: string): CompiledPattern {
  const m = PATTERN.exec(text.trim());
  if (!m) {
    throw new ConfigError(
      `${where}: allowed_targets entry ${JSON.stringify(text)} is not scheme://host[:port] (e.g. redis://10.0.0.*:6379)`,
    );
  }
  const scheme = m[1]!.toLowerCase();
  const driver = driverForScheme(scheme);
  if (!driver) {
    throw new ConfigError(
      `${where}: allowed_targets entry ${JSON.stringify(text)}: scheme "${scheme}" is not supported (supported: ${supportedSchemes().join(', ')})`,
    );
  }
  const port = m[3] ?? String(driver.defaultPort);
  if (port !== '*' && (Number(port) < 1 || Number(port) > 65535)) {
    throw new ConfigError(`${where}: allowed_targets entry ${JSON.stringify(text)}: port out of range`);
  }
  const host = normaliseHost(m[2]!);
  return { text, scheme, host: globToRegExp(host, hostStar(host)), port: globToRegExp(port, '[0-9]+') };
}

export class TargetAllowlist {
  private constructor(private readonly patterns: CompiledPattern[]) {}

  /** Compiles the patterns; `where` names the file in error messages. Throws ConfigError. */
  static compile(patterns: readonly string[], where: string): TargetAllowlist {
    return new TargetAllowlist(patterns.map((p) => compile(p, where)));
  }

  get size(): number {
    return this.patterns.length;
  }

  /** The schemes the patterns name. */
  get schemes(): string[] {
    return [...new Set(this.patterns.map((p) => p.scheme))];
  }

  allows(address: TargetAddress): boolean {
    return this.patterns.some(
      (p) => p.scheme === address.scheme && p.host.test(address.host) && p.port.test(String(address.port)),
    );
  }
}
