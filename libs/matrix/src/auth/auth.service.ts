import { Inject, Injectable } from '@nestjs/common';
import { MatrixError } from '../common/errors.js';
import { bodyOf, isRecord, optionalString, requiredString } from '../common/json.js';
import { randomDeviceId, randomToken, tokenHash } from '../common/random.js';
import { newDeviceBody } from '../devices/device-body.js';
import { MATRIX_HOME_PORT, MATRIX_STORE, type MatrixHomePort, type MatrixStore } from '../port.js';
import type { MatrixSession } from './session.js';

/** Prefix of access tokens, so a leaked string says what it is (and secret scanners can match it). */
const ACCESS_TOKEN_PREFIX = 'pha_';

/** The /login answer. */
export interface LoginResponse {
  user_id: string;
  access_token: string;
  device_id: string;
  home_server: string;
}

/** Logins, logouts and access tokens. Tokens are random, stored as SHA-256, valid on this home for one device. */
@Injectable()
export class AuthService {
  constructor(
    @Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort,
    @Inject(MATRIX_STORE) private readonly store: MatrixStore,
  ) {}

  /** The login flows this home can complete: a password only where an account held here has one. */
  async loginFlows(): Promise<{ flows: Array<{ type: string }> }> {
    const password = (await this.port.passwordLogin?.()) ?? true;
    return { flows: [...(password ? [{ type: 'm.login.password' }] : []), { type: 'm.login.token' }] };
  }

  /**
   * The user ID a login names: a full user ID as given; a bare localpart (`alice` or `@alice`) when exactly one
   * account held here has it. Several: a clear error asking for the full ID; none: the same answer as a wrong
   * password.
   */
  private async resolveUser(user: string): Promise<string> {
    if (user.includes(':')) return user;
    const localpart = user.startsWith('@') ? user.slice(1) : user;
    const matches = (await this.port.userIdsWithLocalpart?.(localpart)) ?? [];
    if (matches.length > 1) {
      throw new MatrixError(
        'M_INVALID_PARAM',
        `Several accounts here are called ${localpart}: log in with the full user ID (${matches.join(', ')}).`,
      );
    }
    return matches[0] ?? user;
  }

  /** Logs in with a password or a login token; creates the device (a `device.put` op) unless it exists. */
  async login(input: unknown): Promise<LoginResponse> {
    const body = bodyOf(input);
    const type = requiredString(body, 'type');
    let serverName: string | null;
    if (type === 'm.login.password') {
      const identifier = body['identifier'];
      let user: string | undefined;
      if (isRecord(identifier)) {
        if (identifier['type'] !== 'm.id.user') {
          throw new MatrixError('M_UNKNOWN', 'Only m.id.user identifiers are supported.', 400);
        }
        user = requiredString(identifier, 'user', 255);
      } else {
        user = optionalString(body, 'user', 255);
      }
      if (user === undefined) throw new MatrixError('M_MISSING_PARAM', 'identifier.user is required.');
      const password = requiredString(body, 'password', 1024);
      serverName = await this.port.checkPassword(await this.resolveUser(user), password);
      if (serverName === null) throw new MatrixError('M_FORBIDDEN', 'Invalid user ID or password.');
    } else if (type === 'm.login.token') {
      serverName = await this.port.consumeLoginToken(requiredString(body, 'token', 1024));
      if (serverName === null) throw new MatrixError('M_FORBIDDEN', 'Invalid or expired login token.');
    } else {
      throw new MatrixError('M_UNKNOWN', `Unsupported login type ${JSON.stringify(type.slice(0, 64))}.`, 400);
    }
    const userId = await this.port.userIdOf(serverName);
    if (userId === null) throw new MatrixError('M_FORBIDDEN', 'The account is not hosted here.');
    const requested = optionalString(body, 'device_id', 255);
    if (requested !== undefined && !/^[A-Za-z0-9._~-]{1,255}$/.test(requested)) {
      throw new MatrixError('M_INVALID_PARAM', 'device_id has characters a device id may not have.');
    }
    const displayName = optionalString(body, 'initial_device_display_name', 255);
    const deviceId = requested ?? randomDeviceId();
    const state = await this.port.state(serverName);
    if (state.devices[deviceId] === undefined) {
      await this.port.applyLocal(serverName, [
        { op: 'device.put', key: deviceId, body: newDeviceBody(userId, deviceId, this.port.homeId, displayName) },
      ]);
    }
    const accessToken = ACCESS_TOKEN_PREFIX + randomToken(32);
    await this.store.insertAccessToken({
      tokenHash: tokenHash(accessToken),
      serverName,
      deviceId,
      home: this.port.homeId,
    });
    return { user_id: userId, access_token: accessToken, device_id: deviceId, home_server: serverName };
  }

  /** The session of a token issued by this home, or M_UNKNOWN_TOKEN. */
  async authenticate(token: string): Promise<MatrixSession> {
    const hash = tokenHash(token);
    const row = await this.store.findAccessToken(hash);
    if (row === null || row.home !== this.port.homeId) {
      throw new MatrixError('M_UNKNOWN_TOKEN', 'Unknown access token.', 401, { soft_logout: false });
    }
    const userId = await this.port.userIdOf(row.serverName);
    if (userId === null) throw new MatrixError('M_UNKNOWN_TOKEN', 'The account is no longer hosted here.');
    return { serverName: row.serverName, userId, deviceId: row.deviceId, tokenHash: hash };
  }

  /**
   * Ends this token and deletes its device (Matrix: logout deletes the device), unless another token of this
   * home still uses it.
   */
  async logout(session: MatrixSession): Promise<Record<string, never>> {
    await this.store.deleteAccessToken(session.tokenHash);
    await this.deleteDevices(session.serverName, [session.deviceId]);
    return {};
  }

  /** Ends every token this home issued for the account and deletes their devices. */
  async logoutAll(session: MatrixSession): Promise<Record<string, never>> {
    const devices = await this.store.devicesWithTokens(session.serverName, this.port.homeId);
    await this.store.deleteDeviceTokens(session.serverName, devices);
    await this.deleteDevices(session.serverName, devices);
    return {};
  }

  /** Deletes devices everywhere (`device.delete` ops), their tokens and their local keys. */
  async deleteDevices(serverName: string, deviceIds: string[]): Promise<void> {
    const state = await this.port.state(serverName);
    const present = [...new Set(deviceIds)].filter((id) => state.devices[id] !== undefined);
    if (present.length > 0) {
      await this.port.applyLocal(
        serverName,
        present.map((id) => ({ op: 'device.delete' as const, key: id, body: {} })),
      );
    }
    await this.store.deleteDeviceTokens(serverName, deviceIds);
    for (const id of deviceIds) await this.store.deleteDeviceKeys(serverName, id);
  }
}
