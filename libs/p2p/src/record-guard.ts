// The DHT replay guard: nothing a peer puts may bring back an older account document than this node
// already knows. Three layers, because each alone can be defeated:
// - the DHT's own record store (GuardedRecordDatastore) never lets a record under `/polyhome/...` replace
//   a stored one that the selector prefers, whatever any cache holds;
// - a bounded cache of the highest seq seen per account (evictable by filler records, so only a fast path);
// - a SeqGuardStore (a port: memory by default, a file for a client node, the app's database later) for the
//   accounts this node hosts or has looked up. It survives restarts and the expiry of the stored record.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { NotFoundError, type AbortOptions } from '@libp2p/interface';
import { Libp2pRecord } from '@libp2p/record';
import { isServerName } from '@polyhome/identity';
import { BaseDatastore } from 'datastore-core';
import { Key, type KeyQuery, type Pair, type Query } from 'interface-datastore';
import { base32 } from 'multiformats/bases/base32';
import { ACCOUNT_RECORD_PREFIX, DHT_RECORD_DATASTORE_PREFIX, RECORD_GUARD_MAX_ACCOUNTS } from './constants.js';
import { InvalidRecordError, SeqGuardStoreError, StaleRecordError } from './errors.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';
import { decodeAccountRecord, accountRecordSelector, SeqCache } from './records.js';

const decoder = new TextDecoder();

/**
 * Where the highest seq of the guarded accounts is kept (the accounts this node hosts or has looked up).
 * An implementation may be backed by a database; every method may throw: a failed `highestSeq` makes the guard
 * refuse the record rather than take it unchecked, a failed `remember` of a newer seq is logged.
 */
export interface SeqGuardStore {
  /** The highest seq remembered for the account, or undefined when the account is not guarded. */
  highestSeq(account: string): Promise<number | undefined>;
  /** Guards the account from now on, remembering `seq` unless a higher seq is already remembered. */
  remember(account: string, seq: number): Promise<void>;
}

/** A SeqGuardStore in memory: the default, lost at restart (the DHT's own store is lost with it). */
export class MemorySeqGuardStore implements SeqGuardStore {
  readonly #seqs = new Map<string, number>();

  async highestSeq(account: string): Promise<number | undefined> {
    return this.#seqs.get(account);
  }

  async remember(account: string, seq: number): Promise<void> {
    this.#seqs.set(account, Math.max(this.#seqs.get(account) ?? 0, seq));
  }
}

/**
 * A SeqGuardStore in one JSON file (`{ "version": 1, "seqs": { "<server name>": seq } }`, mode 0600), for a
 * client-side node with no database at hand. Read once at open; each change is written to a temporary file
 * and renamed over it, so a crash leaves the old or the new file, never half of one.
 */
export class FileSeqGuardStore implements SeqGuardStore {
  readonly #path: string;
  readonly #seqs: Map<string, number>;
  #writing: Promise<void> = Promise.resolve();

  private constructor(path: string, seqs: Map<string, number>) {
    this.#path = path;
    this.#seqs = seqs;
  }

  /** Opens (or starts) the file at `path`. Throws SeqGuardStoreError when it exists and is not such a file. */
  static async open(path: string): Promise<FileSeqGuardStore> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new FileSeqGuardStore(path, new Map());
      throw new SeqGuardStoreError(path, error instanceof Error ? error.message : 'unreadable');
    }
    return new FileSeqGuardStore(path, parseSeqFile(path, text));
  }

  async highestSeq(account: string): Promise<number | undefined> {
    return this.#seqs.get(account);
  }

  async remember(account: string, seq: number): Promise<void> {
    const known = this.#seqs.get(account);
    if (known !== undefined && known >= seq) return;
    this.#seqs.set(account, seq);
    // One write at a time, each of the whole map as it is then: the last write holds every change.
    const write = this.#writing.then(async () => this.#write());
    this.#writing = write.catch(() => undefined);
    await write;
  }

  async #write(): Promise<void> {
    const body = JSON.stringify({ version: 1, seqs: Object.fromEntries(this.#seqs) });
    const temp = `${this.#path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
      const file = await open(temp, 'wx', 0o600);
      try {
        await file.writeFile(body, 'utf8');
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, this.#path);
    } catch (error) {
      throw new SeqGuardStoreError(this.#path, error instanceof Error ? error.message : 'not written');
    }
  }
}

function parseSeqFile(path: string, text: string): Map<string, number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SeqGuardStoreError(path, 'not JSON');
  }
  const seqs = (parsed as { version?: unknown; seqs?: unknown } | null)?.seqs;
  if ((parsed as { version?: unknown }).version !== 1 || typeof seqs !== 'object' || seqs === null) {
    throw new SeqGuardStoreError(path, 'not a version 1 seq guard file');
  }
  const out = new Map<string, number>();
  for (const [account, seq] of Object.entries(seqs)) {
    if (!isServerName(account) || !Number.isSafeInteger(seq) || (seq as number) < 0) {
      throw new SeqGuardStoreError(path, `bad entry for ${account.slice(0, 80)}`);
    }
    out.set(account, seq as number);
  }
  return out;
}

/**
 * libp2p's in-memory datastore, except that a DHT record under `/polyhome/...` never replaces a stored one the
 * account record selector prefers (a higher seq, or at one seq the smaller bytes): such a put throws
 * StaleRecordError, which kad-dht turns into a refused PUT_VALUE. Reads and writes are synchronous, so the
 * comparison and the write cannot interleave with another put.
 */
export class GuardedRecordDatastore extends BaseDatastore {
  readonly #data = new Map<string, Uint8Array>();

  override put(key: Key, val: Uint8Array, options?: AbortOptions): Key {
    options?.signal?.throwIfAborted();
    const name = key.toString();
    if (name.startsWith(DHT_RECORD_DATASTORE_PREFIX)) {
      const existing = this.#data.get(name);
      if (existing !== undefined) assertMayReplace(existing, val);
    }
    // A value decoded from the wire is often a view into the whole chunk the socket read (64 KiB): kept as is, a
    // peer record of a few hundred bytes held that chunk for as long as the peer was known (issue 14). Copied.
    this.#data.set(name, val.byteLength === val.buffer.byteLength ? val : val.slice());
    return key;
  }

  override get(key: Key, options?: AbortOptions): Uint8Array {
    options?.signal?.throwIfAborted();
    const value = this.#data.get(key.toString());
    if (value === undefined) throw new NotFoundError(`${key.toString()} not found`);
    return value;
  }

  override has(key: Key, options?: AbortOptions): boolean {
    options?.signal?.throwIfAborted();
    return this.#data.has(key.toString());
  }

  override delete(key: Key, options?: AbortOptions): void {
    options?.signal?.throwIfAborted();
    this.#data.delete(key.toString());
  }

  override *_all(_q: Query, options?: AbortOptions): Generator<Pair> {
    for (const [key, value] of this.#data) {
      options?.signal?.throwIfAborted();
      yield { key: new Key(key), value };
    }
  }

  override *_allKeys(_q: KeyQuery, options?: AbortOptions): Generator<Key> {
    for (const key of this.#data.keys()) {
      options?.signal?.throwIfAborted();
      yield new Key(key);
    }
  }

  /** The stored DHT record value under a DHT key (e.g. accountRecordKey), if any. */
  record(dhtKey: Uint8Array): Uint8Array | undefined {
    const stored = this.#data.get(recordDatastoreKey(dhtKey));
    return stored === undefined ? undefined : Libp2pRecord.deserialize(stored).value;
  }
}

/** The datastore key kad-dht files a DHT record under (its `bufferToRecordKey` with the default prefix). */
function recordDatastoreKey(dhtKey: Uint8Array): string {
  // kad-dht uses uint8arrays' `base32`: RFC 4648 lower case without padding, the multibase `b` form minus `b`.
  return `${DHT_RECORD_DATASTORE_PREFIX}${base32.baseEncode(dhtKey)}`;
}

function assertMayReplace(existingBytes: Uint8Array, incomingBytes: Uint8Array): void {
  let existing: Libp2pRecord;
  let incoming: Libp2pRecord;
  try {
    existing = Libp2pRecord.deserialize(existingBytes);
    incoming = Libp2pRecord.deserialize(incomingBytes);
  } catch {
    // Not a record kad-dht wrote: not ours to judge.
    return;
  }
  const key = incoming.key;
  if (!decoder.decode(key).startsWith(ACCOUNT_RECORD_PREFIX)) return;
  // The same document again only refreshes its time received (a republish keeps it from expiring).
  if (sameBytes(existing.value, incoming.value)) return;
  let existingSeq: number;
  try {
    existingSeq = decodeAccountRecord(key, existing.value).seq;
  } catch {
    // A stored record that no longer verifies holds nothing back.
    return;
  }
  // Incoming is checked too: kad-dht's own put stores locally without running the validator.
  let incomingSeq: number;
  try {
    incomingSeq = decodeAccountRecord(key, incoming.value).seq;
  } catch (error) {
    throw error instanceof InvalidRecordError ? error : new InvalidRecordError('does not verify');
  }
  if (accountRecordSelector(key, [existing.value, incoming.value]) === 0) {
    throw new StaleRecordError(decoder.decode(key), incomingSeq, existingSeq);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}

/** Options of AccountRecordGuard. */
export interface AccountRecordGuardInit {
  /** Where the seqs of hosted and looked-up accounts are kept (default MemorySeqGuardStore). */
  store?: SeqGuardStore;
  /** Accounts held by the cache of other accounts' seqs (default RECORD_GUARD_MAX_ACCOUNTS). */
  maxAccounts?: number;
  /** Where a store that could not remember a newer seq is logged (default silent; the host gives its own). */
  logger?: P2pLogger;
}

/**
 * The replay guard of one node: the DHT validator (`validate`), the record store (`datastore`) and the
 * pinning of the accounts this node hosts or looks up (`pin`). createPolyhomeHost builds one and offers it as
 * `host.services.recordGuard`.
 */
export class AccountRecordGuard {
  /** Give this to libp2p as its datastore: kad-dht keeps its records there. */
  readonly datastore = new GuardedRecordDatastore();
  readonly #cache: SeqCache;
  readonly #store: SeqGuardStore;
  readonly #log: P2pLogger;

  constructor(init: AccountRecordGuardInit = {}) {
    this.#cache = new SeqCache(init.maxAccounts ?? RECORD_GUARD_MAX_ACCOUNTS);
    this.#store = init.store ?? new MemorySeqGuardStore();
    this.#log = init.logger ?? silentLogger;
  }

  /**
   * kad-dht validator for the `polyhome` namespace: what accountRecordValidator checks, and refuses
   * (InvalidRecordError) a document older than the highest seq the cache or the store holds for its account.
   */
  readonly validate = async (key: Uint8Array, value: Uint8Array): Promise<void> => {
    const document = decodeAccountRecord(key, value);
    const account = decoder.decode(key).slice(ACCOUNT_RECORD_PREFIX.length);
    const cached = this.#cache.get(account);
    const stored = await this.#store.highestSeq(account);
    const seen = Math.max(cached ?? -1, stored ?? -1);
    if (document.seq < seen) {
      throw new InvalidRecordError(`seq ${document.seq} is older than seq ${seen} already seen (rollback)`);
    }
    this.#cache.note(account, document.seq);
    if (stored !== undefined && document.seq > stored) {
      try {
        await this.#store.remember(account, document.seq);
      } catch (error) {
        // The record is newer, so taking it is safe; only the guard's memory of it is lost (it stays cached).
        this.#log.warn({ ...errorFields(error), account }, 'DHT replay guard did not remember a newer seq');
      }
    }
  };

  /**
   * Guards an account from now on (it is hosted here, or was looked up): remembers in the store the higher
   * of `seq` and what the cache and the DHT store already hold for it.
   */
  async pin(account: string, seq = 0): Promise<void> {
    if (!isServerName(account)) throw new InvalidRecordError('not a server name');
    await this.#store.remember(account, Math.max(seq, this.#cache.get(account) ?? 0, this.storedSeq(account) ?? 0));
  }

  /** The seq of the document the DHT store holds for the account, if any (status pages, tests). */
  storedSeq(account: string): number | undefined {
    const key = new TextEncoder().encode(`${ACCOUNT_RECORD_PREFIX}${account}`);
    const value = this.datastore.record(key);
    if (value === undefined) return undefined;
    try {
      return decodeAccountRecord(key, value).seq;
    } catch {
      return undefined;
    }
  }

  /** The seq the bounded cache holds for the account, if it is still held (tests: was it evicted?). */
  cachedSeq(account: string): number | undefined {
    return this.#cache.get(account);
  }

  /** The seq the store remembers for the account, or undefined when the account is not guarded. */
  async guardedSeq(account: string): Promise<number | undefined> {
    return this.#store.highestSeq(account);
  }
}
