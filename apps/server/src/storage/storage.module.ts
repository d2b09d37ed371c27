import { type DynamicModule, Global, Inject, Module, type Provider } from '@nestjs/common';
import { SqlReplicaStore, type Storage, type StorageRepositories } from '@polyhome/storage';
import { StorageService } from './storage.service.js';

/** A repository a module may ask for by name. */
export type RepositoryName = keyof StorageRepositories;

/**
 * The injection token of each repository. The replica store keeps its class as token (the Home's store, which
 * tests fetch with `app.get(SqlReplicaStore)`); the others are interfaces, so they get strings.
 */
const TOKENS: Record<RepositoryName, string | typeof SqlReplicaStore> = {
  accounts: 'AccountRepository',
  homeNodes: 'HomeNodeRepository',
  enrollmentTokens: 'EnrollmentTokenRepository',
  loginTokens: 'LoginTokenRepository',
  replica: SqlReplicaStore,
  matrix: 'SqlMatrixStore',
  media: 'SqlMediaStore',
  rooms: 'SqlRoomStore',
  admin: 'SqlAdminStore',
  receipts: 'SqlReceiptStore',
  toDevice: 'SqlToDeviceStore',
  roomBlocks: 'SqlRoomBlockStore',
  transactions: 'Transactions',
};

// Not exported: only `forFeature` below reads the whole set, so a module gets just the repositories it names.
const REPOSITORIES = Symbol('StorageRepositories');

/** The injection token of one repository (for `inject:` lists of async module factories). */
export function repositoryToken(name: RepositoryName): string | typeof SqlReplicaStore {
  return TOKENS[name];
}

/** Injects one repository: `@InjectRepository('accounts') accounts: AccountRepository`. */
export function InjectRepository(name: RepositoryName): PropertyDecorator & ParameterDecorator {
  return Inject(TOKENS[name]);
}

/**
 * The database of the server. `forRoot` (once, in the app module) holds the opened Storage and its
 * repositories and gives every module `StorageService` (lifecycle, backend, ping) and nothing else;
 * `forFeature('accounts', ...)` in a feature module provides the repositories that module names.
 */
@Global()
@Module({})
export class StorageModule {
  /** The opened Storage and the repositories built from it (`createRepositories`). */
  static forRoot(storage: Storage, repositories: StorageRepositories): DynamicModule {
    const providers: Provider[] = [
      { provide: REPOSITORIES, useValue: repositories },
      { provide: StorageService, useFactory: () => new StorageService(storage) },
    ];
    return { module: StorageModule, providers, exports: providers };
  }

  /** Provides (and exports) the named repositories to the importing module. */
  static forFeature(...names: RepositoryName[]): DynamicModule {
    const providers: Provider[] = names.map((name) => ({
      provide: TOKENS[name],
      useFactory: (repositories: StorageRepositories) => repositories[name],
      inject: [REPOSITORIES],
    }));
    return { module: StorageFeatureModule, providers, exports: providers.map((_, i) => TOKENS[names[i]!]) };
  }
}

/** The module `StorageModule.forFeature` returns, one per set of names. */
@Module({})
class StorageFeatureModule {}
