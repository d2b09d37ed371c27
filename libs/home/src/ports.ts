import { silentLogger, type P2pLogger } from '@polyhome/p2p';
import type { AccountDocument } from '@polyhome/identity';
import type { MatrixAccountState, MatrixStateRow } from '@polyhome/matrix';
import type { ReplicaStore, StateSummary, VersionVector } from '@polyhome/sync';

/** The seq, lamport and document seq of the next op a home makes for an account. */
export interface LocalOpContext {
  seq: number;
  lamport: number;
  docSeq: number;
}

/** What the local op writer needs from the replica store: the next op's position, and the atomic apply. */
export interface LocalOpStore extends Pick<ReplicaStore, 'applyOps'> {
  localOpContext(account: string, origin: string): Promise<LocalOpContext>;
}

/** One page of hosted accounts with the PeerIds of their homes (one set-based query a page). */
export interface HostedAccountPage {
  account: string;
  homes: string[];
}

/**
 * The account store: which accounts this home holds, their documents, and taking one in. `SqlReplicaStore` of
 * `@polyhome/storage` satisfies it (PostgreSQL or PGlite).
 */
export interface AccountStore {
  /** Accounts in server-name order after `after`, with their homes. */
  listHomes(options: { after?: string; limit: number }): Promise<HostedAccountPage[]>;
  /** Documents in force, in server-name order after `after`. */
  documentsPage(options: {
    after?: string;
    limit: number;
  }): Promise<Array<{ account: string; document: AccountDocument }>>;
  /** Starts holding an account a home brought (its custody is the user's). Throws when it is already held. */
  hostAccount(document: AccountDocument, init: { custody: 'self'; receivedFrom: string }): Promise<string>;
}

/** The state store: the account's replicated state as the Matrix client API reads it. */
export interface StateStore {
  state(account: string): Promise<MatrixAccountState>;
  /** Rows of one (lazy) namespace under a key prefix, tombstones with `value` null (the port's `stateRows`). */
  stateRows(account: string, namespace: string, keyPrefix?: string): Promise<MatrixStateRow[]>;
  /** The summary of a group of a grouped lazy namespace (the port's `stateSummary`). */
  stateSummary(account: string, namespace: string, group: string): Promise<StateSummary>;
  /**
   * Accounts, in server-name order after `after`, whose state holds a room joined or invited to: the ones whose rooms
   * a start-up takes in. Optional: without it, every hosted account's state is read.
   */
  accountsInRooms?(options: { after?: string; limit: number }): Promise<string[]>;
}

/** The delivery store: what each home of an account acknowledged. */
export interface DeliveryStore {
  recordAck(account: string, peerId: string, vv: VersionVector): Promise<void>;
}

/** Every store the Home works on, as one object (the SQL replica store is all of them). */
export type HomeStore = ReplicaStore & LocalOpStore & AccountStore & StateStore & DeliveryStore;

/**
 * The accounts side the Matrix client API needs and that differs per profile: a server keeps password hashes,
 * a client-side home none.
 */
export interface HomeAccounts {
  /** The user ID of an active account held here, or null. */
  userIdOf(serverName: string): Promise<string | null>;
  /** The server name of the account when the password matches, or null. */
  checkPassword(userId: string, password: string): Promise<string | null>;
  /** Spends a single-use login token: its account's server name, or null when unknown, used or expired. */
  consumeLoginToken(token: string): Promise<string | null>;
  /** User IDs of the active accounts held here with this localpart (a login may name the localpart alone). */
  userIdsWithLocalpart?(localpart: string): Promise<string[]>;
  /** Whether a password login can succeed here (some account held here has a password). Default: true. */
  passwordLogin?(): Promise<boolean>;
  /**
   * Names a client's cross-signing master key in the account document, when this home holds the root key
   * (a server's hosted accounts). Optional: a home without root keys binds nothing.
   */
  bindCrossSigningMaster?(serverName: string, master: string): Promise<void>;
}

/** A pino-compatible logger (pino's `Logger` fits it): the one of libs/p2p, handed on to its components. */
export type HomeLogger = P2pLogger;

/** A logger that drops everything (tests, and callers that report through events). */
export const SILENT_LOGGER: HomeLogger = silentLogger;
