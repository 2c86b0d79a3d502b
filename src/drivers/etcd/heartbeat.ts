/**
 * Heartbeat mode for etcd (docs/etcd.md "Heartbeat mode"): the key, the gateway request bodies
 * that write and read it, and the parsing of the range reply. No I/O here.
 */
import type { HeartbeatRecord } from '../../core/model';
import { formatHeartbeatJson, parseHeartbeatJson } from '../shared/heartbeat-json';
import { int, record } from './parse';
/** The heartbeat key, under the exporter's own prefix (grant the exporter's role readwrite on it). */
export const HEARTBEAT_KEY_PREFIX = '__datastore_exporter/';
export const HEARTBEAT_KEY = `${HEARTBEAT_KEY_PREFIX}heartbeat`;

/** The gateway's bytes fields are base64 (proto3 JSON). */
const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/**
 * `POST /v3/kv/range` body for the heartbeat key. serializable: this member answers from its own
 * store, without asking the leader (a linearizable read goes through the leader's read index and
 * would always see the latest heartbeat: no lag, ever).
 */
export function heartbeatRangeRequest(): object {
  return { key: base64(HEARTBEAT_KEY), serializable: true };
}

/** `POST /v3/kv/put` body writing a heartbeat record as `{"t": <unix seconds>, "w": "<node_id>"}`. */
export function heartbeatPutRequest(record: HeartbeatRecord): object {
  return {
    key: base64(HEARTBEAT_KEY),
    value: base64(formatHeartbeatJson(record)),
  };
}

/** What one serializable range of the heartbeat key says, in one consistent view of the member. */
export interface HeartbeatRange {
  /** header.revision: the member's store revision when it answered. */
  revision: number;
  /** The key's version: puts since it was (re)created; 0 when it does not exist. */
  version: number;
  /** The record, if the key holds one. */
  record?: HeartbeatRecord;
}

export function parseHeartbeatRange(body: string): HeartbeatRange {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error(`etcd range reply is not JSON: ${JSON.stringify(body.slice(0, 120))}`);
  }
  const reply = record(json);
  const revision = int(record(reply.header).revision);
  if (revision === undefined) {
    throw new Error(`etcd range reply lacks header.revision: ${JSON.stringify(body.slice(0, 200))}`);
  }
  // proto3 JSON omits empty repeated fields: no `kvs` = no such key.
  const kv = Array.isArray(reply.kvs) ? record(reply.kvs[0]) : {};
  const version = int(kv.version) ?? 0;
  const value = typeof kv.value === 'string' ? Buffer.from(kv.value, 'base64').toString('utf8') : undefined;
  return { revision, version, record: parseHeartbeatJson(value)?.record };
}
