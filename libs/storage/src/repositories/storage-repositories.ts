import { SqlAdminStore } from '../admin-store.js';
import type { Storage } from '../data-source.js';
import { SqlLoginTokens } from '../login-tokens.js';
import { SqlMatrixStore } from '../matrix-store.js';
import { SqlMediaStore } from '../media-store.js';
import { SqlReceiptStore } from '../receipt-store.js';
import { SqlReplicaStore, type SqlReplicaStoreInit } from '../replica-store.js';
import { SqlRoomBlockStore } from '../room-block-store.js';
import { SqlRoomStore } from '../room-store.js';
import { SqlSeqGuardStore } from '../seq-guard-store.js';
import { SqlToDeviceStore } from '../to-device-store.js';
import { SqlAccountRepository, type AccountRepository } from './account.repository.js';
import { SqlEnrollmentTokenRepository, type EnrollmentTokenRepository } from './enrollment-token.repository.js';
import { SqlHomeNodeRepository, type HomeNodeRepository } from './home-node.repository.js';
import { SqlTransactions, type Transactions } from './transaction.js';

/** Login tokens as the apps use them (`login_token`). */
export type LoginTokenRepository = Pick<SqlLoginTokens, 'create' | 'consume'>;

/** Every repository of one open Storage: what the apps use instead of the DataSource. */
export interface StorageRepositories {
  accounts: AccountRepository;
  homeNodes: HomeNodeRepository;
  enrollmentTokens: EnrollmentTokenRepository;
  loginTokens: LoginTokenRepository;
  /** The replica store (ops, documents, state, delivery), which the Home runs on. */
  replica: SqlReplicaStore;
  /** The Matrix store of `@polyhome/matrix` (access tokens, device keys, change stream, room events). */
  matrix: SqlMatrixStore;
  /** The content repository of `@polyhome/matrix` (media descriptions and content in chunks). */
  media: SqlMediaStore;
  /** Matrix rooms (events, state groups, extremities, timeline): the `RoomStore` port of `@polyhome/home`. */
  rooms: SqlRoomStore;
  /** The admin API's audit log, account status, and searches and counts across accounts and rooms. */
  admin: SqlAdminStore;
  /** Read receipts of the rooms: the `ReceiptStore` port of `@polyhome/home`. */
  receipts: SqlReceiptStore;
  /** To-device messages (inbox, outbox, deduplication): the `ToDeviceStore` port of `@polyhome/home`. */
  toDevice: SqlToDeviceStore;
  /** Rooms an operator blocked: the `RoomBlockStore` port of `@polyhome/home`. */
  roomBlocks: SqlRoomBlockStore;
  /** Transactions spanning several repositories (enrollment spends its token with the account it stores). */
  transactions: Transactions;
}

/** Options of the repositories built by `createRepositories`. */
export interface StorageRepositoriesInit {
  replica?: SqlReplicaStoreInit;
}

/** Builds the repositories of an opened Storage; one set per process, sharing its connection pool. */
export function createRepositories(storage: Storage, init: StorageRepositoriesInit = {}): StorageRepositories {
  const { dataSource } = storage;
  return {
    accounts: new SqlAccountRepository(dataSource),
    homeNodes: new SqlHomeNodeRepository(dataSource),
    enrollmentTokens: new SqlEnrollmentTokenRepository(dataSource),
    loginTokens: new SqlLoginTokens(dataSource),
    replica: new SqlReplicaStore(dataSource, init.replica),
    matrix: new SqlMatrixStore(dataSource),
    media: new SqlMediaStore(dataSource),
    rooms: new SqlRoomStore(dataSource),
    admin: new SqlAdminStore(dataSource),
    receipts: new SqlReceiptStore(dataSource),
    toDevice: new SqlToDeviceStore(dataSource),
    roomBlocks: new SqlRoomBlockStore(dataSource),
    transactions: new SqlTransactions(dataSource),
  };
}

/**
 * Opens the DHT replay guard's store of an opened Storage (the highest document seq of every account this home
 * hosts or looked up, read once at open): give it to the Home as `seqGuard`.
 */
export function openSeqGuardStore(storage: Storage): Promise<SqlSeqGuardStore> {
  return SqlSeqGuardStore.open(storage.dataSource);
}
