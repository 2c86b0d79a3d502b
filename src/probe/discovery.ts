/**
 * Topology discovery: `GET /discover?target=<seed url>[&auth_module=<name>][&cluster_id=<name>]`
 * answers Prometheus `http_sd_configs` JSON with one target group per member of the seed's cluster,
 * each member as a /probe target URL. Prometheus then probes every member through the usual /probe
 * relabelling, and picks up members added or removed at its next refresh.
 *
 * Members come from the seed node alone (Driver.members(), one pure mapping per driver folder): the
 * exporter never walks the cluster, so it only ever connects where the allowlist lets /probe connect.
 * The seed is checked exactly like a /probe target (probe/target.ts: allowlist, auth module, no
 * credentials or parameters in the URL), and so is every member URL built from the seed's answer:
 * a member outside allowed_targets is left out, never probed, and counted with the reason. A driver
 * that cannot list its members gives the seed alone, marked incomplete.
 *
 * Each discovery connects to the seed with a fresh driver and closes it (Prometheus refreshes every
 * minute by default: not worth a pooled connection, and the pool stays about probes). When the seed
 * cannot be reached the answer is 502: Prometheus then keeps the members of its last good refresh
 * instead of dropping them all because one node is down.
 *
 * The labels are `__meta_datastore_exporter_*`: usable in relabelling (e.g. hashmod, keep primaries),
 * dropped before the scrape. As target labels `datastore` and `cluster_id` would collide with the
 * series' own labels (Prometheus would rename those to exported_*), and a role label would be stale
 * after a failover until the next refresh; datastore_shard_role is the live truth.
 */
import { Counter, Registry } from 'prom-client';
import { ConfigError, withTimeout } from '../core/errors';
import { resolveSnapshot } from '../core/identity';
import type { Logger } from '../core/logger';
import type { Driver, Member, MemberList, Observation } from '../core/model';
import { redactText } from '../core/target';
import { driverForScheme } from '../drivers/registry';
import type { ContentType } from '../http/metrics';
import { addressText } from './allowlist';
import type { ProbeFileConfig } from './config';
import type { ProbeSettings } from './service';
import { ProbeRequestError, resolveProbeTarget, type ProbeTarget } from './target';

/** Prefix of the discovery labels (Prometheus' convention for service discovery metadata). */
export const META = '__meta_datastore_exporter_';

/** One entry of Prometheus' http_sd JSON. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** Why a member the seed named is not in the answer. */
export type LeftOutReason = 'not_allowed' | 'invalid_address' | 'without_address';
const LEFT_OUT_REASONS: readonly LeftOutReason[] = ['not_allowed', 'invalid_address', 'without_address'];
const LEFT_OUT_TEXT: Record<LeftOutReason, string> = {
  not_allowed: 'not in allowed_targets',
  invalid_address: 'not a valid probe target',
  without_address: 'without an address',
};

export interface DiscoveredMembers {
  groups: TargetGroup[];
  leftOut: Record<LeftOutReason, number>;
}

export type DiscoveryResponse =
  | { status: 200; groups: TargetGroup[]; headers: Record<string, string> }
  | { status: 400 | 403 | 502 | 503; message: string };

const RESULTS = ['ok', 'failed', 'bad_request', 'forbidden', 'overloaded'] as const;
type DiscoveryResult = (typeof RESULTS)[number];

export interface DiscoveryQuery {
  target?: unknown;
  auth_module?: unknown;
  cluster_id?: unknown;
}

/** A member's /probe target URL: the seed's scheme and path (database), the member's host and port. */
export function memberUrl(seed: ProbeTarget, member: Pick<Member, 'host' | 'port'>): string {
  const host = member.host.includes(':') ? `[${member.host}]` : member.host;
  const path = seed.target.url.pathname === '/' ? '' : seed.target.url.pathname;
  return `${seed.address.scheme}://${host}:${member.port}${path}`;
}

/**
 * Pure: the seed's member list -> http_sd target groups, each member checked by the /probe rules
 * (with the seed's auth module), duplicates dropped.
 */
export function memberGroups(
  seed: ProbeTarget,
  list: MemberList,
  identity: { datastore: string; clusterId: string },
  config: ProbeFileConfig,
): DiscoveredMembers {
  const leftOut: Record<LeftOutReason, number> = { not_allowed: 0, invalid_address: 0, without_address: 0 };
  leftOut.without_address = list.withoutAddress?.count ?? 0;
  const accepted: { url: string; member: Member }[] = [];
  const seen = new Set<string>();
  for (const member of list.members) {
    let url: string;
    try {
      url = memberUrl(seed, member);
      // The same rules as a /probe of this URL: a member outside the allowlist is never probed.
      resolveProbeTarget({ target: url, auth_module: seed.authModule }, config);
    } catch (err) {
      if (!(err instanceof ProbeRequestError)) throw err;
      leftOut[err.status === 403 ? 'not_allowed' : 'invalid_address']++;
      continue;
    }
    if (seen.has(url)) continue;
    seen.add(url);
    accepted.push({ url, member });
  }
  const left = LEFT_OUT_REASONS.reduce((n, r) => n + leftOut[r], 0);
  const common: Record<string, string> = {
    [`${META}datastore`]: identity.datastore,
    [`${META}cluster_id`]: identity.clusterId,
    [`${META}seed`]: addressText(seed.address),
    [`${META}members_complete`]: String(list.complete && left === 0),
    [`${META}members_left_out`]: String(left),
  };
  if (seed.authModule) common.__param_auth_module = seed.authModule;
  if (seed.clusterId) common.__param_cluster_id = seed.clusterId;
  const groups = accepted.map(({ url, member }) => {
    const labels: Record<string, string> = {
      ...common,
      [`${META}role`]: member.role,
      [`${META}is_seed`]: String(member.self === true),
    };
    if (member.nativeRole) labels[`${META}native_role`] = member.nativeRole;
    if (member.shard) labels[`${META}shard`] = member.shard;
    return { targets: [url], labels };
  });
  return { groups, leftOut };
}

/** For a driver without members(): the seed alone, with its role if it has exactly one shard. */
function seedOnly(seed: ProbeTarget, observation: Observation, datastore: string): MemberList {
  const role = observation.shards.length === 1 ? observation.shards[0]!.role : 'unknown';
  return {
    members: [{ host: seed.target.host, port: seed.target.port, role, self: true }],
    complete: false,
    reason: `the ${datastore} driver cannot list its cluster's members from one node: the seed alone`,
  };
}

/** The one-line headers that say what the JSON cannot (http_sd reads only the target groups). */
function headersOf(list: MemberList, found: DiscoveredMembers): Record<string, string> {
  const left = LEFT_OUT_REASONS.filter((r) => found.leftOut[r] > 0);
  const headers: Record<string, string> = {
    'X-Discovery-Members': String(found.groups.length),
    'X-Discovery-Complete': String(list.complete && left.length === 0),
  };
  const reasons = [
    list.reason,
    ...left.map((r) =>
      r === 'without_address' && list.withoutAddress
        ? `${found.leftOut[r]} ${LEFT_OUT_TEXT[r]} (${list.withoutAddress.reason})`
        : `${found.leftOut[r]} ${LEFT_OUT_TEXT[r]}`,
    ),
  ].filter((t): t is string => !!t);
  if (left.length > 0) {
    headers['X-Discovery-Left-Out'] = left.map((r) => `${r}=${found.leftOut[r]}`).join(', ');
  }
  // Header values must be latin-1 without control characters.
  if (reasons.length > 0) headers['X-Discovery-Note'] = reasons.join('; ').replace(/[^\x20-\x7e]/g, '?');
  return headers;
}

export class DiscoveryService {
  private inFlight = 0;
  private closed = false;
  private readonly results: Record<DiscoveryResult, number> = {
    ok: 0,
    failed: 0,
    bad_request: 0,
    forbidden: 0,
    overloaded: 0,
  };
  private readonly leftOut: Record<LeftOutReason, number> = {
    not_allowed: 0,
    invalid_address: 0,
    without_address: 0,
  };
  private readonly registries = new Map<ContentType, Registry<ContentType>>();
  /** Drivers connected right now, closed at shutdown. */
  private readonly open = new Set<Driver>();

  constructor(
    private readonly settings: ProbeSettings,
    private readonly logger: Logger,
  ) {}

  private refuse(status: 400 | 403 | 502 | 503, message: string, result: DiscoveryResult): DiscoveryResponse {
    this.results[result]++;
    this.logger.debug('discovery refused', { status, reason: message });
    return { status, message };
  }

  async discover(query: DiscoveryQuery): Promise<DiscoveryResponse> {
    if (this.closed) return this.refuse(503, 'the exporter is shutting down', 'overloaded');
    // Discoveries share the probes' cap: each holds one connection while it runs.
    if (this.inFlight >= this.settings.maxConcurrent) {
      return this.refuse(
        503,
        `${this.settings.maxConcurrent} discoveries are already running (--probe.max-concurrent); try again later`,
        'overloaded',
      );
    }
    let seed: ProbeTarget;
    let driver: Driver;
    const registration = (scheme: string) => driverForScheme(scheme)!;
    try {
      seed = resolveProbeTarget(query, this.settings.config);
      driver = registration(seed.target.scheme).create({
        target: seed.target,
        timeoutMs: this.settings.timeoutMs,
        logger: this.logger.child({ probe_target: seed.target.redactedUrl }),
        extra: {},
        heartbeat: false,
      });
    } catch (err) {
      if (err instanceof ProbeRequestError) {
        return this.refuse(err.status, err.message, err.status === 403 ? 'forbidden' : 'bad_request');
      }
      if (err instanceof ConfigError) {
        return this.refuse(400, err.message.replace(/^--target:? ?/, 'target: '), 'bad_request');
      }
      throw err;
    }
    const datastore = registration(seed.target.scheme).name;
    this.inFlight++;
    this.open.add(driver);
    try {
      const ask = async (): Promise<{ observation: Observation; list?: MemberList }> => {
        await driver.connect();
        const observation = await driver.observe();
        return { observation, list: driver.members ? await driver.members() : undefined };
      };
      let answer: { observation: Observation; list?: MemberList };
      try {
        answer = await withTimeout(ask(), this.settings.timeoutMs, 'discovery');
      } catch (err) {
        const message = redactText(err instanceof Error ? err.message : String(err), [seed.target.password]);
        // 502: Prometheus keeps the members of its last good refresh.
        return this.refuse(502, `the seed ${addressText(seed.address)} did not answer: ${message}`, 'failed');
      }
      if (this.closed) return this.refuse(503, 'the exporter is shutting down', 'overloaded');
      const snapshot = resolveSnapshot(
        answer.observation,
        { target: seed.target, clusterId: seed.clusterId },
        Date.now() / 1000,
      );
      const list = answer.list ?? seedOnly(seed, answer.observation, datastore);
      const found = memberGroups(
        seed,
        list,
        { datastore: snapshot.datastore, clusterId: snapshot.clusterId },
        this.settings.config,
      );
      for (const r of LEFT_OUT_REASONS) this.leftOut[r] += found.leftOut[r];
      this.results.ok++;
      const headers = headersOf(list, found);
      this.logger.debug('discovered members', {
        seed: addressText(seed.address),
        members: found.groups.length,
        complete: headers['X-Discovery-Complete'],
        note: headers['X-Discovery-Note'],
      });
      return { status: 200, groups: found.groups, headers };
    } finally {
      this.inFlight--;
      this.open.delete(driver);
      await driver.close().catch(() => undefined);
    }
  }

  /** The exporter's own discovery metrics, for /metrics. */
  metrics(contentType: ContentType): Promise<string> {
    let registry = this.registries.get(contentType);
    if (!registry) {
      registry = new Registry<ContentType>();
      registry.setContentType(contentType);
      const results = this.results;
      const leftOut = this.leftOut;
      new Counter({
        name: 'datastore_exporter_discoveries_total',
        help: 'Discoveries (/discover) answered, by result: ok, failed (the seed did not answer: 502), bad_request (400), forbidden (403), overloaded (503).',
        labelNames: ['result'],
        registers: [registry],
        collect() {
          this.reset();
          for (const r of RESULTS) this.inc({ result: r }, results[r]);
        },
      });
      new Counter({
        name: 'datastore_exporter_discovery_members_left_out_total',
        help: 'Members a seed named that discovery left out, by reason: not_allowed (outside allowed_targets), invalid_address, without_address (the seed knows no address for it).',
        labelNames: ['reason'],
        registers: [registry],
        collect() {
          this.reset();
          for (const r of LEFT_OUT_REASONS) this.inc({ reason: r }, leftOut[r]);
        },
      });
      this.registries.set(contentType, registry);
    }
    return registry.metrics();
  }

  /** Refuses new discoveries and drops the connections of those running. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.open].map((d) => d.close().catch(() => undefined)));
  }
}
