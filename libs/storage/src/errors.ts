/** Stable codes for storage failures. */
export type StorageErrorCode =
  | 'DATA_DIR_LOCKED'
  | 'DATA_DIR_PERMISSIONS'
  | 'DATA_DIR_UNUSABLE'
  | 'DATABASE_UNREACHABLE'
  | 'SCHEMA_DRIFT'
  | 'MIGRATION_FAILED';

/** Thrown when the database cannot be opened, migrated or checked; `code` says which, the message what to do. */
export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}
