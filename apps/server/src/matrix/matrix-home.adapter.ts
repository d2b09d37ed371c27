import { Inject, Injectable } from '@nestjs/common';
import { hashAndSignEvent, parseUserId, type MatrixEvent } from '@polyhome/identity';
import {
  MatrixError,
  type MatrixAccountState,
  type MatrixHomePort,
  type MatrixLocalChange,
  type MatrixRoomVersion,
} from '@polyhome/matrix';
import { AccountEntity, SqlReplicaStore } from '@polyhome/storage';
import { AccountsService } from '../accounts/accounts.service.js';
import { ApiError } from '../common/api-error.js';
import { LoginTokensService } from '../login-tokens/login-tokens.service.js';
import { P2pService } from '../p2p/p2p.service.js';
import { SERVER_SECRETS, type ServerSecrets } from '../secrets/secrets.js';
import { StorageService } from '../storage/storage.service.js';

/** The Matrix client API's port on the server home: its accounts, login tokens, replica store and libp2p node. */
@Injectable()
export class MatrixHomeAdapter implements MatrixHomePort {
  constructor(
    private readonly accounts: AccountsService,
    private readonly loginTokens: LoginTokensService,
    private readonly store: SqlReplicaStore,
    private readonly storage: StorageService,
    private readonly p2p: P2pService,
    @Inject(SERVER_SECRETS) private readonly secrets: ServerSecrets,
  ) {}

  get homeId(): string {
    return this.p2p.peerId;
  }

  async checkPassword(userId: string, password: string): Promise<string | null> {
    try {
      return (await this.accounts.checkPassword(userId, password)).serverName;
    } catch (err) {
      if (err instanceof ApiError) return null;
      throw err;
    }
  }

  async consumeLoginToken(token: string): Promise<string | null> {
    try {
      return await this.loginTokens.consume(token);
    } catch (err) {
      if (err instanceof ApiError) return null;
      throw err;
    }
  }

  async userIdOf(serverName: string): Promise<string | null> {
    const row = await this.storage.dataSource.getRepository(AccountEntity).findOneBy({ serverName });
    return row === null || row.status !== 'active' ? null : row.userId;
  }

  state(serverName: string): Promise<MatrixAccountState> {
    return this.store.state(serverName);
  }

  async applyLocal(serverName: string, changes: MatrixLocalChange[]): Promise<void> {
    try {
      await this.accounts.applyLocal(serverName, changes);
    } catch (err) {
      // A change the op validator refuses is the client's bad input, told in Matrix terms.
      if (err instanceof ApiError && err.errcode === 'M_INVALID_PARAM')
        throw new MatrixError('M_BAD_JSON', err.message);
      throw err;
    }
  }

  async crossSigningMaster(serverName: string): Promise<string | undefined> {
    return (await this.store.document(serverName))?.cross_signing?.master;
  }

  bindCrossSigningMaster(serverName: string, master: string): Promise<void> {
    return this.accounts.bindCrossSigningMaster(serverName, master);
  }

  onChanged(listener: (serverName: string, keys: string[]) => void): void {
    this.p2p.onChanged(listener);
  }

  async signEvent(serverName: string, event: MatrixEvent, roomVersion: MatrixRoomVersion): Promise<MatrixEvent> {
    // The sender is the account's user: refuse to sign for a server name that is not the event's.
    if (typeof event['sender'] !== 'string' || parseUserId(event['sender']).serverName !== serverName) {
      throw new Error('signEvent: sender is not of this account');
    }
    return hashAndSignEvent(event, serverName, `ed25519:${this.p2p.peerId}`, this.secrets.nodeKey, roomVersion);
  }
}
