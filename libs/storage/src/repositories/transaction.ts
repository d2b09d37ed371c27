import type { DataSource, EntityManager } from 'typeorm';

declare const TRANSACTION: unique symbol;

/**
 * An open database transaction, opaque outside libs/storage: callers pass it from `Transactions.run` to the
 * repository methods that take one, so their writes commit or roll back together.
 */
export interface StorageTransaction {
  readonly [TRANSACTION]: true;
}

/** Runs work in one transaction (committed when it resolves, rolled back when it throws). */
export interface Transactions {
  run<T>(work: (tx: StorageTransaction) => Promise<T>): Promise<T>;
}

/** The TypeORM manager behind a transaction (libs/storage only). */
export function managerOf(tx: StorageTransaction): EntityManager {
  return tx as unknown as EntityManager;
}

/** A TypeORM manager as an opaque transaction (libs/storage only). */
export function transactionOf(manager: EntityManager): StorageTransaction {
  return manager as unknown as StorageTransaction;
}

/** Transactions on one DataSource. */
export class SqlTransactions implements Transactions {
  constructor(private readonly dataSource: DataSource) {}

  run<T>(work: (tx: StorageTransaction) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work(transactionOf(manager)));
  }
}
