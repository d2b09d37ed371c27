import type { MatrixEvent } from '@polyhome/identity';
import type { JsonAccountState, OpKind, StateSummary } from '@polyhome/sync';
import type { MatrixMediaOptions } from './media/media-port.js';
import type { MatrixEphemeralPort } from './ephemeral/ephemeral-port.js';
import type { MatrixRoomsPort } from './rooms/rooms-port.js';
import type { MatrixToDevicePort } from './to-device/to-device-port.js';

/** A change to the account's replicated state, made as an op of this home (any kind of the op-kind registry). */
export interface MatrixLocalChange {
  op: OpKind;
  key: string;
  body: Record<string, unknown>;
}

/**
 * The replicated state of an account as the home holds it (bodies of the winning ops): one field per state
 * field of the op-kind registry (`devices`, `memberships`, `crossSigning`).
 */
export type MatrixAccountState = JsonAccountState;

/** A row of a namespace as `stateRows` reads it: the winning body, or null where a tombstone holds the key. */
export interface MatrixStateRow {
  key: string;
  value: Record<string, unknown> | null;
}

/** Room versions whose redaction rules the signer knows (identity's `hashAndSignEvent`). */
export type MatrixRoomVersion = '1' | '2' | '3' | '4' | '5';

/**
 * What the Matrix client API needs from the home that serves it. The server implements it with its
 * accounts and p2p services; a client-side home will implement it the same way.
 */
export interface MatrixHomePort {
  /** PeerId of this home: access tokens are valid only on the home that issued them. */
  readonly homeId: string;
  /** The server name of the account whose user ID this is, when it is hosted here and the password matches. */
  checkPassword(userId: string, password: string): Promise<string | null>;
  /** Spends a single-use login token: the server name of its account, or null when unknown, used or expired. */
  consumeLoginToken(token: string): Promise<string | null>;
  /** User IDs of accounts hosted here with this localpart. Optional: without it, logins need the full user ID. */
  userIdsWithLocalpart?(localpart: string): Promise<string[]>;
  /** Whether `m.login.password` can succeed on this home (it is advertised only then). Optional: default true. */
  passwordLogin?(): Promise<boolean>;
  /** The user ID of a hosted account, or null when it is not hosted here. */
  userIdOf(serverName: string): Promise<string | null>;
  /** The account's replicated state. */
  state(serverName: string): Promise<MatrixAccountState>;
  /**
   * The rows of one namespace of the account's state whose keys start with `keyPrefix`, tombstones included:
   * how lazy namespaces (key backup), which `state` leaves out, are read. Optional: without it, no key backup.
   */
  stateRows?(serverName: string, namespace: string, keyPrefix?: string): Promise<MatrixStateRow[]>;
  /**
   * The summary of a group of a grouped lazy namespace (`summaryGroupOf`: the keys of one backup version): the count
   * of its live keys and the XOR of their row hashes (`summaryOf` over its rows), kept by the store so it is read
   * without the rows. Optional: without it, key backup computes it from `stateRows`.
   */
  stateSummary?(serverName: string, namespace: string, group: string): Promise<StateSummary>;
  /** Makes, stores and pushes ops of this home. Throws when a change is refused; nothing is applied then. */
  applyLocal(serverName: string, changes: MatrixLocalChange[]): Promise<void>;
  /**
   * Before a cross-signing master key is stored: names it in the account document when this home holds the
   * root key and the document names another (or none). A home without the root key leaves the document,
   * and the op is then refused unless the document already names this key. Optional: without it, nothing is bound.
   */
  bindCrossSigningMaster?(serverName: string, master: string): Promise<void>;
  /**
   * The cross-signing master key the account document names, if any: `/keys/query` then serves only keys it
   * binds (keys held from before the document named another are not served). Optional: without it, all are.
   */
  crossSigningMaster?(serverName: string): Promise<string | undefined>;
  /** Calls `listener` whenever an account's state changes here, locally or from another home. */
  onChanged(listener: (serverName: string, keys: string[]) => void): void;
  /**
   * The room engine (room versions 10 and 11 over the home's room store). Optional while the engine is being
   * built: without it, rooms are the account-only membership view of RoomsService.
   */
  readonly rooms?: MatrixRoomsPort;
  /** Typing, receipts, read markers and presence. Optional: without it those endpoints answer M_UNRECOGNIZED. */
  readonly ephemeral?: MatrixEphemeralPort;
  /**
   * End-to-end keys held by other homes: users of other accounts, and this account's devices on its other homes.
   * Optional: without it, `/keys/query` and `/keys/claim` answer only for this account's keys held here.
   */
  readonly remoteKeys?: MatrixRemoteKeysPort;
  /** To-device messages. Optional: without it `/sendToDevice` answers M_UNRECOGNIZED and /sync gives none. */
  readonly toDevice?: MatrixToDevicePort;
  /** Hashes and signs a room event as this home under the account's server name (key id `ed25519:<homeId>`). */
  signEvent(serverName: string, event: MatrixEvent, roomVersion: MatrixRoomVersion): Promise<MatrixEvent>;
}

/** What a home answered for `/keys/query` of other users (spec-shaped); `failures` by server name. */
export interface MatrixRemoteKeyQuery {
  device_keys: Record<string, Record<string, Record<string, unknown>>>;
  master_keys: Record<string, Record<string, unknown>>;
  self_signing_keys: Record<string, Record<string, unknown>>;
  failures: Record<string, Record<string, unknown>>;
}

/** What homes answered for `/keys/claim` (spec-shaped); `failures` by server name. */
export interface MatrixRemoteKeyClaim {
  one_time_keys: Record<string, Record<string, Record<string, unknown>>>;
  failures: Record<string, Record<string, unknown>>;
}

/**
 * Keys held by other homes, asked over federation as `origin` (the account of the client asking). A server (an
 * account) that cannot be asked in `timeoutMs` is named in `failures`; the rest is answered.
 */
export interface MatrixRemoteKeysPort {
  /** Device and cross-signing keys of users of other accounts (`{ userId: [deviceId...] }`, [] for all). */
  query(origin: string, users: Record<string, string[]>, timeoutMs: number): Promise<MatrixRemoteKeyQuery>;
  /**
   * One-time (else fallback) keys, `{ userId: { deviceId: algorithm } }`: other users' devices, and the asking
   * account's own devices that live on its other homes; each is asked of the home that holds the device's keys.
   */
  claim(
    origin: string,
    devices: Record<string, Record<string, string>>,
    timeoutMs: number,
  ): Promise<MatrixRemoteKeyClaim>;
}

/** An access token as stored: its SHA-256, never the token. */
export interface MatrixStoredToken {
  tokenHash: string;
  serverName: string;
  deviceId: string;
  home: string;
}

/** A one-time or fallback key as uploaded (`keyId` is `<algorithm>:<id>`). */
export interface MatrixStoredKey {
  keyId: string;
  algorithm: string;
  value: unknown;
}

/** How many keys a device may hold on a home: one-time keys (all algorithms), and algorithms with a fallback key. */
export interface MatrixDeviceKeyLimits {
  oneTime: number;
  fallbackAlgorithms: number;
}

/**
 * What `uploadKeys` did: stored everything, or nothing because the device would then hold more than its limit
 * (`kind` says which; `held` is what it holds, `adding` what the upload would add).
 */
export type MatrixKeyUpload =
  { stored: true } | { stored: false; kind: 'one_time' | 'fallback'; held: number; adding: number };

/**
 * Changes of an account after a position, and the position reached. `expired` when the store pruned the
 * account's stream past that position: changes may be missing from `keys`, so everything counts as changed.
 */
export interface MatrixChanges {
  position: number;
  keys: string[];
  expired: boolean;
}

/** What /sync tells a device of its keys: unclaimed one-time keys per algorithm, unused fallback key algorithms. */
export interface MatrixDeviceKeyCounts {
  oneTime: Record<string, number>;
  unusedFallback: string[];
}

/** Local, unreplicated storage of the Matrix client API (`SqlMatrixStore` of `@polyhome/storage` fits it). */
export interface MatrixStore {
  insertAccessToken(token: MatrixStoredToken): Promise<void>;
  findAccessToken(tokenHash: string): Promise<MatrixStoredToken | null>;
  deleteAccessToken(tokenHash: string): Promise<void>;
  deleteDeviceTokens(serverName: string, deviceIds: string[]): Promise<void>;
  devicesWithTokens(serverName: string, home: string): Promise<string[]>;
  /** One-time keys added and fallback keys replaced at once, or nothing when the device would exceed `limits`. */
  uploadKeys(
    serverName: string,
    deviceId: string,
    upload: { oneTime: MatrixStoredKey[]; fallback: MatrixStoredKey[] },
    limits: MatrixDeviceKeyLimits,
  ): Promise<MatrixKeyUpload>;
  countOneTimeKeys(serverName: string, deviceId: string): Promise<Record<string, number>>;
  /** Unclaimed one-time keys per algorithm and the algorithms with an unused fallback key (sorted), read at once. */
  deviceKeyCounts(serverName: string, deviceId: string): Promise<MatrixDeviceKeyCounts>;
  claimKey(serverName: string, deviceId: string, algorithm: string): Promise<{ keyId: string; value: unknown } | null>;
  deleteDeviceKeys(serverName: string, deviceId: string): Promise<void>;
  /**
   * Changes of many accounts appended in one transaction, in the map's order; returns the position reached.
   * `readable` is called once a read sent from then on sees them (it may be before the promise resolves).
   */
  recordChangesOf(changes: ReadonlyMap<string, readonly string[]>, readable?: () => void): Promise<number>;
  position(): Promise<number>;
  changesSince(serverName: string, since: number): Promise<MatrixChanges>;
  /** `changesSince` and the device's `deviceKeyCounts` in one read (what a woken /sync needs first). */
  changesAndKeyCounts(
    serverName: string,
    since: number,
    deviceId: string,
  ): Promise<MatrixChanges & { deviceKeys: MatrixDeviceKeyCounts }>;
  saveRoomEvent(serverName: string, roomId: string, event: Record<string, unknown>): Promise<void>;
  /** Stores a client's filter under a new id (filters are per home: a client uses them where it made them). */
  saveFilter(serverName: string, filterId: string, filter: Record<string, unknown>): Promise<void>;
  /** A stored filter of the account, or null. */
  getFilter(serverName: string, filterId: string): Promise<Record<string, unknown> | null>;
  roomEvents(serverName: string, roomId: string): Promise<Array<Record<string, unknown>>>;
}

/** What `MatrixClientApiModule` is configured with. */
export interface MatrixClientApiOptions {
  port: MatrixHomePort;
  store: MatrixStore;
  /** The content repository: where media is kept, the upload cap, and the hook for media held by other homes. */
  media: MatrixMediaOptions;
}

/** Injection token of the port. */
export const MATRIX_HOME_PORT = Symbol('MATRIX_HOME_PORT');
/** Injection token of the store. */
export const MATRIX_STORE = Symbol('MATRIX_STORE');
/** Injection token of the options. */
export const MATRIX_OPTIONS = Symbol('MATRIX_CLIENT_API_OPTIONS');
