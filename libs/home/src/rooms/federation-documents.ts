// The account documents federation reads: those of the accounts hosted here (the replica store) and those of
// other accounts in their rooms (verified, kept in the room store). A document says which homes sign for a
// server (an account) and where its events go; a newer one is fetched when a home not in the held one speaks.
import { homeStatus, verifyAccountDocument, type AccountDocument } from '@polyhome/identity';
import type { RoomFederationStore } from '../room-store.js';
import type { DocumentSource } from './pipeline.js';

/** Documents of other accounts kept in memory (the store keeps them all). */
const CACHED_DOCUMENTS = 4096;

/**
 * How long a hosted account's document (or its absence) read from the replica store is reused. A new document
 * that reaches this home through sync is taken at once (`forgetHosted`); the time bounds what other writers
 * (an operator deleting an account) leave stale. Every event checked reads the documents of its signers, so
 * without it each event cost a read per signer, and a sent one three.
 */
const HOSTED_TTL_MS = 1_000;

/** Where a missing or stale document can be fetched: a home that speaks for the account, or the DHT. */
export type DocumentFetcher = (serverName: string, fromPeer?: string) => Promise<unknown>;

/** The documents of hosted and of other accounts (see the file comment). */
export class FederationDocuments implements DocumentSource {
  readonly #cache = new Map<string, AccountDocument>();
  readonly #hostedCache = new Map<string, { document: AccountDocument | undefined; until: number }>();
  /** The addresses documents gave each home, by PeerId (the newest document read wins). */
  readonly #addresses = new Map<string, readonly string[]>();
  #fetch: DocumentFetcher | undefined;

  constructor(
    private readonly hosted: DocumentSource,
    private readonly store: Pick<RoomFederationStore, 'foreignDocument' | 'putForeignDocument'>,
  ) {}

  /** Hosted accounts whose document is held in memory now (at most those read in the last HOSTED_TTL_MS). */
  get hostedHeld(): number {
    return this.#hostedCache.size;
  }

  /** Drops what is held in memory of a hosted account's document (a newer one came, or it was hosted or left). */
  forgetHosted(serverName: string): void {
    this.#hostedCache.delete(serverName);
  }

  /**
   * Takes a hosted account's document read under its lock (a batch of ops was applied with it): reused as one read
   * from the store would be, for as long.
   */
  primeHosted(serverName: string, document: AccountDocument): void {
    this.#hostedCache.delete(serverName);
    this.#hostedCache.set(serverName, { document, until: Date.now() + HOSTED_TTL_MS });
    if (this.#hostedCache.size > CACHED_DOCUMENTS) this.#hostedCache.delete(this.#hostedCache.keys().next().value!);
  }

  /** A hosted account's document (or undefined when it is not hosted), reused for HOSTED_TTL_MS. */
  async hostedDocument(serverName: string): Promise<AccountDocument | undefined> {
    return this.#hostedDocument(serverName);
  }

  async #hostedDocument(serverName: string): Promise<AccountDocument | undefined> {
    const now = Date.now();
    const held = this.#hostedCache.get(serverName);
    if (held !== undefined && held.until > now) return held.document;
    const document = await this.hosted.document(serverName);
    this.#hostedCache.delete(serverName);
    this.#dropExpired(now);
    this.#hostedCache.set(serverName, { document, until: now + HOSTED_TTL_MS });
    if (this.#hostedCache.size > CACHED_DOCUMENTS) this.#hostedCache.delete(this.#hostedCache.keys().next().value!);
    return document;
  }

  // Entries are (re)inserted with `until` = now + HOSTED_TTL_MS, so the map is in expiry order: the expired ones
  // are at its front. Dropping them keeps only the documents read in the last HOSTED_TTL_MS (each active account's
  // whole document stayed otherwise, up to CACHED_DOCUMENTS of them, long after its activity: issue 14).
  #dropExpired(now: number): void {
    for (const [serverName, held] of this.#hostedCache) {
      if (held.until > now) return;
      this.#hostedCache.delete(serverName);
    }
  }

  /** Sets how missing documents are fetched (federation sets it once its transport runs). */
  setFetcher(fetch: DocumentFetcher): void {
    this.#fetch = fetch;
  }

  /** The held document of an account: hosted here, or another account's as last verified. */
  async document(serverName: string): Promise<AccountDocument | undefined> {
    const own = await this.#hostedDocument(serverName);
    if (own !== undefined) {
      this.#noteAddresses(own);
      return own;
    }
    const cached = this.#cache.get(serverName);
    if (cached !== undefined) return cached;
    const stored = await this.store.foreignDocument(serverName);
    if (stored === null) return undefined;
    try {
      const document = verifyAccountDocument(JSON.parse(stored.document), { expectedServerName: serverName });
      this.#remember(serverName, document);
      return document;
    } catch {
      return undefined;
    }
  }

  /**
   * Takes a document another home or the DHT gave: verified against the server name (its root key), kept when
   * it is newer than the held one. Returns the document now in force, or undefined when it did not verify.
   */
  async learn(serverName: string, value: unknown): Promise<AccountDocument | undefined> {
    let document: AccountDocument;
    try {
      document = verifyAccountDocument(value, { expectedServerName: serverName });
    } catch {
      return this.document(serverName);
    }
    const own = await this.hosted.document(serverName);
    if (own !== undefined) return own;
    const held = await this.document(serverName);
    if (held !== undefined && held.seq >= document.seq) return held;
    await this.store.putForeignDocument(serverName, document.seq, JSON.stringify(document));
    this.#remember(serverName, document);
    return document;
  }

  /**
   * The document of an account in which `peerId` (when given) is a home: the held one when it names the peer,
   * else a newer one fetched from the peer itself and then the DHT. Undefined when none can be had.
   */
  async resolve(
    serverName: string,
    options: { peerId?: string; askPeer?: string } = {},
  ): Promise<AccountDocument | undefined> {
    const held = await this.document(serverName);
    const names = (document: AccountDocument | undefined): boolean =>
      document !== undefined && (options.peerId === undefined || homeStatus(document, options.peerId).kind === 'home');
    if (names(held)) return held;
    const fetch = this.#fetch;
    if (fetch === undefined) return held;
    const sources = [options.askPeer ?? options.peerId, undefined];
    for (const source of [...new Set(sources)]) {
      let fetched: unknown;
      try {
        fetched = await fetch(serverName, source);
      } catch {
        continue;
      }
      if (fetched === undefined) continue;
      const now = await this.learn(serverName, fetched);
      if (names(now)) return now;
    }
    return held;
  }

  /** The PeerIds of an account's homes (revoked ones are not homes), from its held document. */
  async homesOf(serverName: string): Promise<string[]> {
    const document = await this.document(serverName);
    return document === undefined ? [] : document.homes.map((h) => h.peer_id);
  }

  /** The addresses the documents read here give a home (empty when none named it with any). */
  addressesOf(peerId: string): readonly string[] {
    return this.#addresses.get(peerId) ?? [];
  }

  #noteAddresses(document: AccountDocument): void {
    for (const home of document.homes) {
      if (home.addrs.length === 0) continue;
      this.#addresses.delete(home.peer_id);
      this.#addresses.set(home.peer_id, home.addrs);
    }
    while (this.#addresses.size > CACHED_DOCUMENTS * 4) this.#addresses.delete(this.#addresses.keys().next().value!);
  }

  #remember(serverName: string, document: AccountDocument): void {
    this.#noteAddresses(document);
    this.#cache.delete(serverName);
    this.#cache.set(serverName, document);
    if (this.#cache.size > CACHED_DOCUMENTS) this.#cache.delete(this.#cache.keys().next().value!);
  }
}
