export {
  openStorage,
  postgresDataSourceOptions,
  prepareDatabaseTemplate,
  redactDatabaseUrl,
  restoreEmbeddedDatabase,
  schemaDrift,
} from './data-source.js';
export type { Storage, StorageBackend, StorageInit } from './data-source.js';
export { lockDataDir } from './data-dir-lock.js';
export { sqlStatementsSent } from './sql-statements.js';
export { PGLITE_YIELD_AFTER_MS } from './pglite/pglite-pg-driver.js';
export { assertPrivateDataDir, preparePrivateDataDir, restrictDataDir } from './data-dir-modes.js';
export type { DataDirLock } from './data-dir-lock.js';
export { StorageError } from './errors.js';
export type { StorageErrorCode } from './errors.js';
export type {
  AccountCustody,
  AccountStatus,
  DocumentEquivocation,
  HomeRole,
  MatrixDeviceKeyKind,
} from './entities/index.js';
export { createRepositories, openSeqGuardStore } from './repositories/storage-repositories.js';
export type {
  LoginTokenRepository,
  StorageRepositories,
  StorageRepositoriesInit,
} from './repositories/storage-repositories.js';
export type { AccountPage, AccountRecord, AccountRepository } from './repositories/account.repository.js';
export type { HomeNodeRegistration, HomeNodeRepository } from './repositories/home-node.repository.js';
export type { EnrollmentTokenRecord, EnrollmentTokenRepository } from './repositories/enrollment-token.repository.js';
export type { StorageTransaction, Transactions } from './repositories/transaction.js';
export { SqlReplicaStore } from './replica-store.js';
export type { HostAccountInit, LocalOpContext, SqlReplicaStoreInit, StoredAccountState } from './replica-store.js';
export { DEFAULT_CHANGES_PER_ACCOUNT, SqlMatrixStore } from './matrix-store.js';
export type {
  ChangesSince,
  DeviceKeyCounts,
  DeviceKeyLimits,
  DeviceKeyUpload,
  StoredAccessToken,
  StoredDeviceKey,
} from './matrix-store.js';
export { DEFAULT_MAX_STATE_DELTA_HOPS, SqlRoomStore } from './room-store.js';
export type { PersistRoomEvent, RoomStateBefore, RoomStateDelta, StoredRoomEvent, OutboxEntry } from './room-store.js';
export { SqlReceiptStore } from './receipt-store.js';
export { SqlRoomBlockStore } from './room-block-store.js';
export type { RoomBlockRow } from './room-block-store.js';
export type { ReceiptRow, StoredReceiptRow } from './receipt-store.js';
export { SqlToDeviceStore, TO_DEVICE_SEEN_RETENTION_MS } from './to-device-store.js';
export type {
  StoredToDeviceMessage,
  StoredToDeviceOutboxRow,
  ToDeviceAccept,
  ToDeviceAccepted,
  ToDeviceInboxRow,
  ToDeviceKey,
  ToDeviceOutboxRow,
} from './to-device-store.js';
export { SqlLoginTokens } from './login-tokens.js';
export { MEDIA_CHUNK_BYTES, SqlMediaStore } from './media-store.js';
export type { MediaUpload, StoredMediaInfo } from './media-store.js';
export { SqlSeqGuardStore } from './seq-guard-store.js';
export type { LoginTokenUse } from './login-tokens.js';
export { ROOM_DETAIL_STATE_LIMIT, SqlAdminStore } from './admin-store.js';
export type {
  AccountActivity,
  AdminAuditInput,
  AdminAuditRecord,
  AdminCounts,
  AdminJobChange,
  AdminJobRecord,
  AdminRoomMember,
  AdminRoomSummary,
  AdminStateEvent,
  DeliveryBacklog,
} from './admin-store.js';
