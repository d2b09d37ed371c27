// The DHT side of an account: the CID its homes provide, the record key of its document, and the
// validator and selector kad-dht runs on every `/polyhome/...` record it stores or returns. A record is
// valid only if it is the canonical JSON of an account document signed by the root key that the
// server name in the record key names; among valid records the highest `seq` wins.
import {
  canonicalJsonBytes,
  isServerName,
  verifyAccountDocument,
  ACCOUNT_DOCUMENT_LIMITS,
  type AccountDocument,
} from '@polyhome/identity';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { ACCOUNT_CID_PREFIX, ACCOUNT_RECORD_PREFIX, RECORD_GUARD_MAX_ACCOUNTS } from './constants.js';
import { InvalidRecordError } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The CID every home of an account provides: CIDv1, raw codec, sha256 of `polyhome:account:<server name>`. */
export async function accountCid(serverName: string): Promise<CID> {
  const digest = await sha256.digest(encoder.encode(`${ACCOUNT_CID_PREFIX}${serverName}`));
  return CID.createV1(raw.code, digest);
}

/** The DHT record key of an account's document: UTF-8 of `/polyhome/account/<server name>`. */
export function accountRecordKey(serverName: string): Uint8Array {
  return encoder.encode(`${ACCOUNT_RECORD_PREFIX}${serverName}`);
}

/** The DHT value of a document: its canonical JSON bytes (signatures included). */
export function encodeAccountRecord(document: AccountDocument): Uint8Array {
  return canonicalJsonBytes(document);
}

/**
 * Parses and verifies a DHT record: the key must be `/polyhome/account/<server name>`, the value the
 * canonical JSON of a document of that account with a valid root signature. Throws InvalidRecordError.
 */
export function decodeAccountRecord(key: Uint8Array, value: Uint8Array): AccountDocument {
  let keyText: string;
  try {
    keyText = decoder.decode(key);
  } catch {
    throw new InvalidRecordError('key is not UTF-8');
  }
  if (!keyText.startsWith(ACCOUNT_RECORD_PREFIX)) throw new InvalidRecordError('unknown key kind');
  const serverName = keyText.slice(ACCOUNT_RECORD_PREFIX.length);
  if (!isServerName(serverName)) throw new InvalidRecordError('key does not end in a server name');
  // Cap before parsing: the canonical form of a valid document is never larger than this.
  if (value.byteLength > ACCOUNT_DOCUMENT_LIMITS.maxDocumentBytes) throw new InvalidRecordError('value too large');
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(value));
  } catch {
    throw new InvalidRecordError('value is not UTF-8 JSON');
  }
  let document: AccountDocument;
  try {
    // Checks `type` (a signed op or any other signed object never passes) and the root signature.
    document = verifyAccountDocument(parsed, { expectedServerName: serverName });
  } catch (error) {
    throw new InvalidRecordError(error instanceof Error ? error.message : 'does not verify');
  }
  // One encoding per document, so equal documents are equal bytes and peers can compare records.
  const canonical = canonicalJsonBytes(document);
  if (canonical.byteLength !== value.byteLength || canonical.some((b, i) => b !== value[i])) {
    throw new InvalidRecordError('value is not in canonical JSON');
  }
  return document;
}

/** kad-dht validator for the `polyhome` namespace: throws InvalidRecordError for anything decodeAccountRecord refuses. */
export function accountRecordValidator(key: Uint8Array, value: Uint8Array): void {
  decodeAccountRecord(key, value);
}

/**
 * A kad-dht validator that also refuses a valid record older than one this node has already seen for
 * the same account. kad-dht stores a PUT_VALUE without asking the selector, so without this anyone
 * could replay an old signed document (seq 1) over the current one. The seqs are kept in a bounded map, which
 * filler records can evict: the host runs AccountRecordGuard (record-guard.ts) instead, whose record store
 * compares with the stored record and whose SeqGuardStore keeps hosted and looked-up accounts.
 */
export function createAccountRecordValidator(
  maxAccounts = RECORD_GUARD_MAX_ACCOUNTS,
): (key: Uint8Array, value: Uint8Array) => void {
  const highest = new SeqCache(maxAccounts);
  return (key, value) => {
    const document = decodeAccountRecord(key, value);
    const serverName = decoder.decode(key).slice(ACCOUNT_RECORD_PREFIX.length);
    const seen = highest.get(serverName);
    if (seen !== undefined && document.seq < seen) {
      throw new InvalidRecordError(`seq ${document.seq} is older than seq ${seen} already seen (rollback)`);
    }
    highest.note(serverName, document.seq);
  };
}

/** A bounded map of the highest seq seen per account, least recently seen evicted first. */
export class SeqCache {
  readonly #max: number;
  readonly #seqs = new Map<string, number>();

  constructor(maxAccounts: number) {
    if (!Number.isSafeInteger(maxAccounts) || maxAccounts < 1)
      throw new RangeError('maxAccounts must be a whole number >= 1');
    this.#max = maxAccounts;
  }

  /** The highest seq seen for the account, if still held. */
  get(account: string): number | undefined {
    return this.#seqs.get(account);
  }

  /** Records `seq` (keeping the higher) and makes the account the most recently seen. */
  note(account: string, seq: number): void {
    const seen = this.#seqs.get(account);
    this.#seqs.delete(account);
    this.#seqs.set(account, Math.max(seen ?? 0, seq));
    if (this.#seqs.size > this.#max) this.#seqs.delete(this.#seqs.keys().next().value!);
  }
}

/**
 * kad-dht selector for the `polyhome` namespace: the index of the valid record with the highest `seq`.
 * Records that do not verify never win. Two different documents with one `seq` (equivocation) resolve
 * to the smaller bytes, so every node picks alike; holders of a document still keep theirs (chooseDocument).
 */
export function accountRecordSelector(key: Uint8Array, records: Uint8Array[]): number {
  let best = -1;
  let bestSeq = -1;
  records.forEach((record, i) => {
    let seq: number;
    try {
      seq = decodeAccountRecord(key, record).seq;
    } catch {
      return;
    }
    const current = best >= 0 ? records[best] : undefined;
    if (seq > bestSeq || (seq === bestSeq && current !== undefined && compareBytes(record, current) < 0)) {
      best = i;
      bestSeq = seq;
    }
  });
  // kad-dht wants an index; with no valid record it falls back to 0, which the lookup verifies again.
  return Math.max(best, 0);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
