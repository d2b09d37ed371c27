import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Storage, StorageBackend } from '@polyhome/storage';

/**
 * The open database of this process, for its lifecycle and health only: closed last at shutdown (after the
 * queue has drained), its backend named and pinged. Data goes through repositories (`StorageModule.forFeature`).
 */
@Injectable()
export class StorageService implements OnApplicationShutdown {
  constructor(private readonly storage: Storage) {}

  /** postgres or pglite. */
  get backend(): StorageBackend {
    return this.storage.backend;
  }

  /** Resolves when the database answers. */
  ping(): Promise<void> {
    return this.storage.ping();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.storage.close();
  }
}
