export { openStorage, postgresDataSourceOptions, redactDatabaseUrl, schemaDrift } from './data-source.js';
export type { Storage, StorageBackend, StorageInit } from './data-source.js';
export { lockDataDir } from './data-dir-lock.js';
export type { DataDirLock } from './data-dir-lock.js';
export { StorageError } from './errors.js';
export type { StorageErrorCode } from './errors.js';
export * from './entities/index.js';
export { SqlReplicaStore } from './replica-store.js';
export type { HostAccountInit, LocalOpContext, SqlReplicaStoreInit, StoredAccountState } from './replica-store.js';
