import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { AccountEntity, type Storage, type StorageBackend } from '@polyhome/storage';
import type { DataSource } from 'typeorm';

/** The open database of this process, closed last at shutdown (after the queue has drained). */
@Injectable()
export class StorageService implements OnApplicationShutdown {
  constructor(private readonly storage: Storage) {}

  /** postgres or pglite. */
  get backend(): StorageBackend {
    return this.storage.backend;
  }

  /** The TypeORM DataSource, for repositories. */
  get dataSource(): DataSource {
    return this.storage.dataSource;
  }

  /** Resolves when the database answers. */
  ping(): Promise<void> {
    return this.storage.ping();
  }

  /** How many accounts this database hosts. */
  countAccounts(): Promise<number> {
    return this.storage.dataSource.getRepository(AccountEntity).count();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.storage.close();
  }
}
