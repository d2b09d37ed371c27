// Summaries of grouped lazy namespaces (key backup: the keys of one version): the count of a group's live keys
// and the XOR of their row hashes. XOR makes the summary a function of the set of winning rows alone, so it is
// kept by adding and removing rows one at a time, and every home holding the same winners holds the same one.
import { canonicalJsonBytes, sha256 } from '@polyhome/identity';

/** The hash of a live state row in a group's summary: SHA-256 of the canonical JSON of `[key, value]`. */
export function summaryRowHash(key: string, value: Record<string, unknown>): Uint8Array {
  return sha256(canonicalJsonBytes([key, value] as never));
}

/** A group's summary: how many live keys, and the XOR of their row hashes (32 bytes). */
export interface StateSummary {
  count: number;
  digest: Uint8Array;
}

/** The summary of a group's rows (tombstones, `value` null, left out). */
export function summaryOf(rows: Iterable<{ key: string; value: Record<string, unknown> | null }>): StateSummary {
  const digest = new Uint8Array(32);
  let count = 0;
  for (const { key, value } of rows) {
    if (value === null) continue;
    xorInto(digest, summaryRowHash(key, value));
    count++;
  }
  return { count, digest };
}

/** XORs `hash` into `digest` (both 32 bytes). */
export function xorInto(digest: Uint8Array, hash: Uint8Array): void {
  for (let i = 0; i < 32; i++) digest[i]! ^= hash[i]!;
}
