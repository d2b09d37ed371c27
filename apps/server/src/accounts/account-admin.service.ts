import { Inject, Injectable } from '@nestjs/common';
import type { AccountDocument } from '@polyhome/identity';
import { deviceDeletions, devicesOfHome, hashPassword, leaveAllRooms, type LeftRooms } from '@polyhome/home';
import {
  SqlReplicaStore,
  type AccountRecord,
  type AccountRepository,
  type SqlAdminStore,
  type SqlMatrixStore,
} from '@polyhome/storage';
import type { Logger } from 'pino';
import { ApiError } from '../common/api-error.js';
import { AuditService } from '../audit/audit.service.js';
import { PINO_LOGGER } from '../logging/logger.js';
import { P2pService } from '../p2p/p2p.service.js';
import { InjectRepository } from '../storage/storage.module.js';
import { AccountsService, type AccountSummary } from './accounts.service.js';

/** What deactivating an account did, as the admin API answers it (and the audit log keeps it). */
export interface DeactivationView extends AccountSummary {
  rooms_left: string[];
  /** Rooms held by no engine here, left by a replicated `member.set` op the homes holding them enact. */
  rooms_left_by_op: string[];
  rooms_not_left: Array<{ room_id: string; error: string }>;
  devices_deleted: string[];
  tokens_revoked: number;
}

/**
 * The operator's actions on an account: deactivate, reactivate, take down, reset the password, delete a device,
 * stop hosting, revoke a home. Each runs only on good input, and each writes an audit entry with its reason
 * after it succeeded. Changes to the account's replicated state are ops of this home (they reach every home).
 */
@Injectable()
export class AccountAdminService {
  constructor(
    private readonly accounts: AccountsService,
    private readonly audit: AuditService,
    private readonly p2p: P2pService,
    @InjectRepository('admin') private readonly admin: SqlAdminStore,
    @InjectRepository('matrix') private readonly matrix: SqlMatrixStore,
    @InjectRepository('accounts') private readonly rows: AccountRepository,
    private readonly store: SqlReplicaStore,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Ends the account's Matrix presence: its user leaves every room (through the room engine, replicated as
   * `member.set`), logins are refused here, every access token this server issued is revoked and the devices
   * logged in here are deleted (replicated `device.delete`). Its document, ops, state and evidence are kept,
   * so `reactivate` can undo the status (rooms are not rejoined).
   */
  async deactivate(userId: string, reason: string): Promise<DeactivationView> {
    const row = await this.accounts.rowByUserId(userId);
    if (row.status === 'deactivated') throw new ApiError('M_INVALID_PARAM', `${userId} is deactivated already.`);
    // Rooms first: the engine acts for users of accounts hosted here, whatever their status.
    const left: LeftRooms = await leaveAllRooms(
      {
        state: (account) => this.store.state(account),
        applyLocal: (account, changes) => this.accounts.applyLocal(account, [...changes]),
        rooms: this.p2p.home.rooms,
      },
      row.serverName,
      row.userId,
      reason,
    );
    // Then the status, so no login and no token passes from here on; then the tokens issued before it.
    await this.admin.setAccountStatus(row.serverName, 'deactivated');
    const tokens = await this.admin.revokeAccessTokens(row.serverName);
    const devices = await this.deleteDevicesHere(row.serverName);
    const detail = {
      previous_status: row.status,
      rooms_left: left.byEvent,
      rooms_left_by_op: left.byOp,
      rooms_not_left: left.failed.map((f) => ({ room_id: f.roomId, error: f.error })),
      devices_deleted: devices,
      tokens_revoked: tokens,
    };
    await this.audit.record({ action: 'account.deactivate', target: row.userId, reason, detail });
    this.logger.info({ userId: row.userId, ...detail }, 'account deactivated by its admin');
    return { ...(await this.summaryOf(row.serverName)), ...detail };
  }

  /**
   * Takes the account down on this server: logins refused, every token revoked, and this server stops taking
   * part in the account's sync. Nothing of the account's replicated state changes (no room is left, no device
   * deleted): its other homes keep serving it. Its data here is kept, for evidence and for `reactivate`.
   */
  async takedown(userId: string, reason: string): Promise<AccountSummary & { tokens_revoked: number }> {
    const row = await this.accounts.rowByUserId(userId);
    if (row.status === 'taken_down') throw new ApiError('M_INVALID_PARAM', `${userId} is taken down already.`);
    await this.admin.setAccountStatus(row.serverName, 'taken_down');
    const tokens = await this.admin.revokeAccessTokens(row.serverName);
    await this.p2p.home.unhostAccount(row.serverName);
    const detail = { previous_status: row.status, tokens_revoked: tokens };
    await this.audit.record({ action: 'account.takedown', target: row.userId, reason, detail });
    return { ...(await this.summaryOf(row.serverName)), tokens_revoked: tokens };
  }

  /** Serves a deactivated or taken-down account again (a taken-down one rejoins its sync). */
  async reactivate(userId: string, reason: string): Promise<AccountSummary> {
    const row = await this.accounts.rowByUserId(userId);
    if (row.status === 'active') throw new ApiError('M_INVALID_PARAM', `${userId} is active already.`);
    await this.admin.setAccountStatus(row.serverName, 'active');
    if (row.status === 'taken_down') {
      await this.p2p.home.hostAccount(row.serverName);
      this.p2p.home.connectHomesLater(row.serverName);
    }
    await this.audit.record({
      action: 'account.reactivate',
      target: row.userId,
      reason,
      detail: { previous_status: row.status },
    });
    return this.summaryOf(row.serverName);
  }

  /**
   * Sets a new password: the scrypt verifier is stored here and written as a `password.set` op, so every home of
   * the account checks the new one. With `logoutDevices`, every token this server issued is revoked.
   */
  async resetPassword(
    userId: string,
    password: string,
    logoutDevices: boolean,
    reason: string,
  ): Promise<AccountSummary & { tokens_revoked: number }> {
    const row = await this.accounts.rowByUserId(userId);
    const verifier = await hashPassword(password);
    await this.rows.setPasswordHash(row.serverName, verifier);
    await this.accounts.applyLocal(row.serverName, [{ op: 'password.set', key: 'verifier', body: { verifier } }]);
    const tokens = logoutDevices ? await this.admin.revokeAccessTokens(row.serverName) : 0;
    await this.audit.record({
      action: 'account.password',
      target: row.userId,
      reason,
      detail: { tokens_revoked: tokens },
    });
    return { ...(await this.summaryOf(row.serverName)), tokens_revoked: tokens };
  }

  /**
   * Deletes one device of the account on every home: a `device.delete` op (replicated), and here its tokens
   * and one-time keys. M_NOT_FOUND when the account has no such device.
   */
  async deleteDevice(userId: string, deviceId: string, reason: string): Promise<{ device_id: string }> {
    const row = await this.accounts.rowByUserId(userId);
    const changes = deviceDeletions(await this.store.state(row.serverName), [deviceId]);
    if (changes.length === 0) throw new ApiError('M_NOT_FOUND', `${userId} has no device ${deviceId}.`);
    await this.accounts.applyLocal(row.serverName, changes);
    await this.matrix.deleteDeviceTokens(row.serverName, [deviceId]);
    await this.matrix.deleteDeviceKeys(row.serverName, deviceId);
    await this.audit.record({ action: 'device.delete', target: row.userId, reason, detail: { device_id: deviceId } });
    return { device_id: deviceId };
  }

  /** Stops hosting the account (its key and data here are destroyed), with an audit entry. */
  async remove(userId: string, reason: string): Promise<void> {
    const row = await this.accounts.rowByUserId(userId);
    await this.accounts.remove(userId);
    await this.audit.record({
      action: 'account.delete',
      target: row.userId,
      reason,
      detail: { custody: row.custody, status: row.status },
    });
  }

  /** Revokes a home of a hosted account, with an audit entry. */
  async removeHome(userId: string, peerId: string, reason: string): Promise<AccountDocument> {
    const document = await this.accounts.removeHome(userId, peerId);
    await this.audit.record({
      action: 'home.revoke',
      target: userId,
      reason,
      detail: { peer_id: peerId, doc_seq: document.seq },
    });
    return document;
  }

  /** Deletes the devices logged in on this server (replicated), with their tokens and keys; their ids. */
  private async deleteDevicesHere(serverName: string): Promise<string[]> {
    const state = await this.store.state(serverName);
    const ids = devicesOfHome(state, this.p2p.peerId);
    const changes = deviceDeletions(state, ids);
    if (changes.length > 0) await this.accounts.applyLocal(serverName, changes);
    await this.matrix.deleteDeviceTokens(serverName, ids);
    for (const id of ids) await this.matrix.deleteDeviceKeys(serverName, id);
    return ids;
  }

  private async summaryOf(serverName: string): Promise<AccountSummary> {
    const row: AccountRecord | undefined = await this.rows.findByServerName(serverName);
    if (row === undefined) throw new ApiError('M_NOT_FOUND', 'The account is no longer hosted here.');
    return this.accounts.summary(row);
  }
}
