// Finding the homes of an account from its user ID alone: the signed document from the DHT record
// `/polyhome/account/<server name>`, then the providers of the account CID, kept only if the verified
// document lists them as homes. Nothing the DHT says is trusted without the root signature.
import type { PeerId } from '@libp2p/interface';
import type { QueryEvent } from '@libp2p/kad-dht';
import { peerIdFromString } from '@libp2p/peer-id';
import { isServerName, parseUserId, verifyAccountDocument, type AccountDocument } from '@polyhome/identity';
import { DHT_QUERY_TIMEOUT, MAX_PROVIDERS } from './constants.js';
import { AccountNotFoundError, InvalidAccountIdError, StaleRecordError } from './errors.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';
import type {
  AccountLookup,
  Discovery,
  DiscoveryComponents,
  DiscoveryInit,
  LookupOptions,
  LookedUpHome,
} from './index.js';
import { accountCid, accountRecordKey, decodeAccountRecord, encodeAccountRecord } from './records.js';

/** The DHT-backed Discovery (see the Discovery interface in index.ts). */
export class DhtDiscovery implements Discovery {
  readonly #components: DiscoveryComponents;
  readonly #queryTimeout: number;
  readonly #maxProviders: number;
  readonly #log: P2pLogger;

  constructor(components: DiscoveryComponents, init: DiscoveryInit = {}) {
    this.#components = components;
    this.#queryTimeout = init.queryTimeout ?? DHT_QUERY_TIMEOUT;
    this.#maxProviders = init.maxProviders ?? MAX_PROVIDERS;
    this.#log = components.logger ?? silentLogger;
  }

  async provide(serverName: string, options?: LookupOptions): Promise<void> {
    if (!isServerName(serverName)) throw new InvalidAccountIdError('server name');
    // A home provides every account it hosts: guard their documents from now on.
    await this.#pin(serverName);
    const cid = await accountCid(serverName);
    for await (const event of this.#components.dht.provide(cid, { signal: this.#signal(options) })) {
      // Drain: kad-dht only does the work as the events are read.
      await this.#failed(event);
    }
  }

  async publishDocument(document: AccountDocument, options?: LookupOptions): Promise<number> {
    // Never put what every other node's validator would refuse.
    const verified = verifyAccountDocument(document);
    const { serverName } = parseUserId(verified.user_id);
    const key = accountRecordKey(serverName);
    const value = encodeAccountRecord(verified);
    decodeAccountRecord(key, value);
    await this.#pin(serverName, verified.seq);
    let stored = 0;
    try {
      for await (const event of this.#components.dht.put(key, value, { signal: this.#signal(options) })) {
        if (event.name === 'PEER_RESPONSE') stored++;
        await this.#failed(event);
      }
    } catch (error) {
      // This node's DHT store already holds a newer document (another home published it first): this one
      // is not worth spreading, and a republish of every account must go on to the next one.
      if (!(error instanceof StaleRecordError)) throw error;
      this.#log.debug({ ...errorFields(error), account: serverName }, 'DHT holds a newer document; not published');
    }
    return stored;
  }

  async fetchDocument(serverName: string, options?: LookupOptions): Promise<AccountDocument | undefined> {
    if (!isServerName(serverName)) throw new InvalidAccountIdError('server name');
    const key = accountRecordKey(serverName);
    let best: AccountDocument | undefined;
    try {
      for await (const event of this.#components.dht.get(key, { signal: this.#signal(options) })) {
        await this.#failed(event);
        if (event.name !== 'VALUE') continue;
        // kad-dht validated it already; verify again here so this function's promise does not rest on
        // the DHT's configuration, and keep the highest seq should several values come through.
        try {
          const document = decodeAccountRecord(key, event.value);
          if (best === undefined || document.seq > best.seq) best = document;
        } catch (error) {
          // A forged or stale value is ignored, as the validator would.
          this.#log.debug(
            { ...errorFields(error), account: serverName, from: event.from.toString() },
            'DHT record ignored',
          );
        }
      }
    } catch (error) {
      // kad-dht throws when it finds no record or cannot send a correction to a stale peer; what was
      // already verified stays valid, and no record at all is reported by the caller.
      this.#log.debug({ ...errorFields(error), account: serverName, found: best !== undefined }, 'DHT get ended early');
    }
    // A looked-up account stays guarded: an older document replayed later is refused here.
    if (best !== undefined) await this.#pin(serverName, best.seq);
    return best;
  }

  async lookup(target: string, options?: LookupOptions): Promise<AccountLookup> {
    const { serverName, userId } = parseTarget(target);
    const document = await this.fetchDocument(serverName, options);
    if (document === undefined) throw new AccountNotFoundError(serverName);
    if (userId !== undefined && document.user_id !== userId) throw new AccountNotFoundError(userId);

    const homeIds = new Set(document.homes.map((h) => h.peer_id));
    const providerAddrs = new Map<string, Set<string>>();
    const ignoredProviders = new Set<string>();
    const cid = await accountCid(serverName);
    let seen = 0;
    try {
      for await (const event of this.#components.dht.findProviders(cid, { signal: this.#signal(options) })) {
        await this.#failed(event);
        if (event.name !== 'PROVIDER') continue;
        for (const provider of event.providers) {
          const id = provider.id.toString();
          // Only the signed document says who is a home: other providers are ignored (and reported).
          if (!homeIds.has(id)) {
            ignoredProviders.add(id);
            continue;
          }
          const addrs = providerAddrs.get(id) ?? new Set<string>();
          for (const ma of provider.multiaddrs) addrs.add(ma.toString());
          providerAddrs.set(id, addrs);
        }
        seen += event.providers.length;
        if (seen >= this.#maxProviders) break;
      }
    } catch (error) {
      // No providers found (or the query timed out): the document's own addresses remain.
      this.#log.debug({ ...errorFields(error), account: serverName, seen }, 'DHT findProviders ended early');
    }

    const self = this.#components.peerId.toString();
    const homes = await Promise.all(
      document.homes.map(async (home): Promise<LookedUpHome> => {
        const addrs = new Set<string>(home.addrs);
        for (const a of providerAddrs.get(home.peer_id) ?? []) addrs.add(a);
        const peerId = peerIdFromString(home.peer_id);
        for (const a of await this.#storedAddrs(peerId)) addrs.add(a);
        if (addrs.size === 0 && home.peer_id !== self && options?.findPeer !== false) {
          for (const a of await this.#findPeer(peerId, options)) addrs.add(a);
        }
        return {
          peerId: home.peer_id,
          role: home.role,
          name: home.name,
          addrs: [...addrs],
          provider: providerAddrs.has(home.peer_id),
          connected: this.#components.getConnections(peerId).length > 0,
        };
      }),
    );
    return { document, homes, ignoredProviders: [...ignoredProviders] };
  }

  /** A query failed on a peer: the host evicts it if that was a failed dial (see unreachable-peers.ts). */
  async #failed(event: QueryEvent): Promise<void> {
    if (event.name === 'QUERY_ERROR') await this.#components.unreachable?.queryFailed(event.from);
  }

  async #pin(serverName: string, seq?: number): Promise<void> {
    try {
      await this.#components.recordGuard?.pin(serverName, seq);
    } catch (error) {
      // The DHT store still compares seqs; a guard store that cannot write must not stop discovery.
      this.#log.warn({ ...errorFields(error), account: serverName }, 'DHT replay guard not updated');
    }
  }

  async #storedAddrs(peerId: PeerId): Promise<string[]> {
    try {
      const peer = await this.#components.peerStore.get(peerId);
      return peer.addresses.map((a) => a.multiaddr.toString());
    } catch (error) {
      // Not in the peer store is the usual case (never met); anything else is worth a line.
      if (!(error instanceof Error && error.name === 'NotFoundError')) {
        this.#log.debug({ ...errorFields(error), peer: peerId.toString() }, 'peer store read failed');
      }
      return [];
    }
  }

  async #findPeer(peerId: PeerId, options?: LookupOptions): Promise<string[]> {
    try {
      for await (const event of this.#components.dht.findPeer(peerId, { signal: this.#signal(options) })) {
        await this.#failed(event);
        if (event.name === 'FINAL_PEER' && event.peer.id.equals(peerId)) {
          return event.peer.multiaddrs.map((a) => a.toString());
        }
      }
    } catch (error) {
      // Not found in time: the home may be a client that only dials out.
      this.#log.debug({ ...errorFields(error), peer: peerId.toString() }, 'DHT findPeer found nothing');
    }
    return [];
  }

  #signal(options?: LookupOptions): AbortSignal {
    const timeout = AbortSignal.timeout(options?.timeout ?? this.#queryTimeout);
    return options?.signal !== undefined ? AbortSignal.any([timeout, options.signal]) : timeout;
  }
}

function parseTarget(target: string): { serverName: string; userId?: string } {
  if (typeof target !== 'string') throw new InvalidAccountIdError('not a string');
  if (target.startsWith('@')) {
    try {
      return { serverName: parseUserId(target).serverName, userId: target };
    } catch (error) {
      throw new InvalidAccountIdError(error instanceof Error ? error.message : 'user ID');
    }
  }
  if (isServerName(target)) return { serverName: target };
  throw new InvalidAccountIdError('expected @localpart:<64 hex> or <64 hex>');
}
