import {
  addHome as addHomeToDocument,
  removeHome as removeHomeFromDocument,
  type AccountDocument,
  type Home as HomeEntry,
  type RevokedEntry,
  type SecretKey,
} from '@polyhome/identity';
import type { ReplicaStore } from '@polyhome/sync';
import { AccountNotHeldError, SelfRevocationError } from './errors.js';

/** What a document change needs from the store. */
export type DocumentStore = Pick<ReplicaStore, 'document' | 'offerDocument' | 'versionVector' | 'logDigests'> & {
  /** The revocation entry of an origin (its head seq and log digest, read together); optional, see revocationPin. */
  revocationPin?(account: string, origin: string): Promise<RevokedEntry>;
};

/** A home to add: the PeerId, the address (when there is one), the role and the name. */
export interface NewHome {
  peerId: string;
  address?: string | undefined;
  role: HomeEntry['role'];
  name: string;
  /** The pairing code of a node made with `init --join`, as its user read it out (Home.addHome proves it). */
  pairingCode?: string | undefined;
}

/**
 * Signs the account's next document and puts it in force in the store, as home `self`; no network. The
 * Home does this and then tells its sync sessions; a CLI with no running home does it alone.
 * `beforeInForce` runs with the signed document first (a server home enrolls with it): when it throws,
 * nothing changes. Throws AccountNotHeldError, and identity's refusals from `change`.
 */
export async function changeAccountDocument(
  store: DocumentStore,
  self: string,
  account: string,
  change: (document: AccountDocument) => AccountDocument | Promise<AccountDocument>,
  beforeInForce?: (next: AccountDocument) => Promise<void>,
): Promise<AccountDocument> {
  const document = await store.document(account);
  if (document === undefined) throw new AccountNotHeldError(account);
  const next = await change(document);
  if (beforeInForce !== undefined) await beforeInForce(next);
  return store.offerDocument(account, next, self);
}

/** Adds a home to the account's document, signed with the root key (see changeAccountDocument). */
export function addHomeToAccount(
  store: DocumentStore,
  self: string,
  account: string,
  home: NewHome,
  rootKey: SecretKey,
  beforeInForce?: (next: AccountDocument) => Promise<void>,
): Promise<AccountDocument> {
  const entry: HomeEntry = {
    peer_id: home.peerId,
    role: home.role,
    name: home.name,
    addrs: home.address === undefined ? [] : [home.address],
  };
  return changeAccountDocument(store, self, account, (d) => addHomeToDocument(d, entry, rootKey), beforeInForce);
}

/**
 * The revocation entry of `origin`: the last op seq held from it, and the digest of its log held here pinned
 * (`{ seq, digest }`), so replicas that hold other versions of its ops converge on these; `0` when nothing of
 * it is held. A store that reads both in one step (the SQL store's `revocationPin`) is asked for it; otherwise
 * they are read from the version vector and the log digests.
 */
export async function revocationPin(store: DocumentStore, account: string, origin: string): Promise<RevokedEntry> {
  if (store.revocationPin !== undefined) return store.revocationPin(account, origin);
  const seq = (await store.versionVector(account))[origin] ?? 0;
  const digest = (await store.logDigests?.(account))?.[origin];
  return seq === 0 || digest === undefined ? seq : { seq, digest };
}

/**
 * Revokes a home from the account's document, pinning its log as held here (see revocationPin). Throws
 * SelfRevocationError when `peerId` is `self`.
 */
export async function removeHomeFromAccount(
  store: DocumentStore,
  self: string,
  account: string,
  peerId: string,
  rootKey: SecretKey,
): Promise<AccountDocument> {
  if (peerId === self) throw new SelfRevocationError(peerId);
  return changeAccountDocument(store, self, account, async (document) => {
    // Only a home the document lists is looked up: anything else (a typo, "\u0000") is refused by identity's
    // removeHome as not a home, before it reaches a query.
    const listed = document.homes.some((h) => h.peer_id === peerId);
    const pin = listed ? await revocationPin(store, account, peerId) : 0;
    return removeHomeFromDocument(document, peerId, pin, rootKey);
  });
}

/**
 * The account's next document without home `self`, revoked at its own log as held here (a provider migrating
 * the account away signs its own departure): signed with the root key, NOT put in force (the home that takes
 * the key over stores it first; see MigrationJobs). Throws AccountNotHeldError, and identity's refusals.
 */
export async function departureDocument(
  store: DocumentStore,
  self: string,
  account: string,
  rootKey: SecretKey,
): Promise<AccountDocument> {
  const document = await store.document(account);
  if (document === undefined) throw new AccountNotHeldError(account);
  return removeHomeFromDocument(document, self, await revocationPin(store, account, self), rootKey);
}
