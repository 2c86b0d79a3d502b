/**
 * Redis Cluster key slots: CRC16 (XMODEM) of the key, or of its {hash tag}, modulo 16384.
 * Used by heartbeat mode to place one heartbeat key inside each shard's own slots.
 */
export const SLOT_COUNT = 16384;

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The slot of a key, honouring a non-empty {hash tag} as Redis does. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % SLOT_COUNT;
}

const tagCache = new Map<number, string>();

/** A short hash tag whose slot is `slot` (found by search once, then cached). */
export function hashTagForSlot(slot: number): string {
  let tag = tagCache.get(slot);
  if (tag !== undefined) return tag;
  for (let i = 0; ; i++) {
    const candidate = i.toString(36);
    const s = keySlot(candidate);
    if (!tagCache.has(s)) tagCache.set(s, candidate);
    if (s === slot) {
      tag = candidate;
      break;
    }
  }
  return tag;
}

/** Slot ranges as CLUSTER NODES writes them, comma separated ('0-5460,6000'), as [from, to] pairs. */
export function parseSlotRanges(ranges: string): [number, number][] {
  const out: [number, number][] = [];
  for (const part of ranges.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m) out.push([Number(m[1]), Number(m[2] ?? m[1])]);
  }
  return out;
}
