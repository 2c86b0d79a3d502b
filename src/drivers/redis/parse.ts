/**
 * Pure parsers for Redis's text replies (INFO, INFO commandstats, CLUSTER NODES).
 * They never throw on unexpected lines: unknown or malformed lines are skipped, so a new Redis
 * version adding fields cannot break collection.
 */

/** INFO's `key:value` lines, all sections merged (keys are unique across sections). */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** Calls per command from INFO commandstats (`cmdstat_get:calls=2,usec=...`); `client|list` kept as is. */
export function parseCommandStats(info: Map<string, string>): Map<string, number> {
  const calls = new Map<string, number>();
  for (const [key, value] of info) {
    if (!key.startsWith('cmdstat_')) continue;
    const m = /(?:^|,)calls=(\d+)/.exec(value);
    if (m) calls.set(key.slice('cmdstat_'.length).toLowerCase(), Number(m[1]));
  }
  return calls;
}

/** A number field of INFO, or undefined when absent or not a finite number. */
export function infoNumber(info: Map<string, string>, key: string): number | undefined {
  const raw = info.get(key);
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

export interface ClusterNode {
  id: string;
  /** As CLUSTER NODES writes it: `ip:port@cport` (Redis 7: `,hostname` after it; `:0@0` when unknown). */
  address: string;
  flags: string[];
  /** The master's id for a replica, else undefined. */
  masterId?: string;
  /** Slot ranges owned, as written by Redis ('0-5460', '5461'); migrating/importing markers dropped. */
  slots: string[];
}

/** CLUSTER NODES: `<id> <addr> <flags> <master|-> <ping> <pong> <epoch> <link> <slot>...` per line. */
export function parseClusterNodes(text: string): ClusterNode[] {
  const nodes: ClusterNode[] = [];
  for (const line of text.split(/\r?\n/)) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 8 || !parts[0]) continue;
    nodes.push({
      id: parts[0],
      address: parts[1]!,
      flags: parts[2]!.split(','),
      masterId: parts[3] && parts[3] !== '-' ? parts[3] : undefined,
      slots: parts.slice(8).filter((s) => /^\d+(-\d+)?$/.test(s)),
    });
  }
  return nodes;
}

/** Classifies a command from COMMAND INFO flags: 'write' beats 'readonly'; anything else is neither. */
export type CommandKind = 'read' | 'write' | 'other';

export function commandKind(flags: readonly string[]): CommandKind {
  if (flags.includes('write')) return 'write';
  if (flags.includes('readonly')) return 'read';
  return 'other';
}
