import { Injectable } from '@nestjs/common';
import { exportSecretKey, homeStatus, isPeerId, type AccountDocument } from '@polyhome/identity';
import type { AccountRepository } from '@polyhome/storage';
import { AccountsService } from '../accounts/accounts.service.js';
import { ApiError } from '../common/api-error.js';
import { InjectRepository } from '../storage/storage.module.js';
import type { CustodyExportDto, TakeCustodyDto } from './custody.dto.js';

/**
 * Custody handover: a hosted account's user takes its root key, once. The server erases its sealed copy
 * and keeps hosting the account as co-hosted; from then on it can no longer sign documents for it.
 */
@Injectable()
export class CustodyService {
  constructor(
    private readonly accounts: AccountsService,
    @InjectRepository('accounts') private readonly rows: AccountRepository,
  ) {}

  /**
   * Checks the password, adds the claiming device as a client home when its PeerId is given (signed with the key
   * still held here), exports the root key under the passphrase, then erases the sealed key and sets custody to
   * `self` in one conditional UPDATE: of two concurrent calls only the one that flips the row gets the export. Throws ApiError M_FORBIDDEN (wrong password, or the key is already the user's).
   */
  async takeCustody(input: TakeCustodyDto): Promise<CustodyExportDto> {
    const row = await this.accounts.checkPassword(input.user_id, input.password);
    if (row.custody !== 'hosted' || row.sealedRootKey === null) throw alreadyTaken(row.userId);
    let document: AccountDocument = (await this.accounts.detail(row.userId)).document;
    if (input.peer_id !== undefined) {
      if (!isPeerId(input.peer_id)) throw new ApiError('M_INVALID_PARAM', 'peer_id is not a valid PeerId.');
      // Signed while the key is still here: the device taking it is a home from its first connection on. A retry
      // after a failed handover finds it already named.
      if (homeStatus(document, input.peer_id).kind === 'unknown') {
        document = await this.accounts.addHome(row.userId, {
          peer_id: input.peer_id,
          role: 'client',
          name: input.home_name ?? 'client',
          addrs: [],
        });
      }
    }
    const rootKey = this.accounts.rootKeyOf(row);
    let exported: string;
    try {
      // scrypt runs before the row is touched, so no lock is held for its half second.
      exported = await exportSecretKey(rootKey, input.passphrase);
    } finally {
      rootKey.destroy();
    }
    if (!(await this.rows.releaseCustody(row.serverName))) throw alreadyTaken(row.userId);
    return { export: exported, document };
  }
}

function alreadyTaken(userId: string): ApiError {
  return new ApiError('M_FORBIDDEN', `The key of ${userId} is already in the user's custody; it is given only once.`);
}
