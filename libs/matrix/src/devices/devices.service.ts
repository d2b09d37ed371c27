import { Inject, Injectable } from '@nestjs/common';
import { AuthService } from '../auth/auth.service.js';
import type { MatrixSession } from '../auth/session.js';
import { UiaService } from '../auth/uia.service.js';
import { MatrixError } from '../common/errors.js';
import { bodyOf, optionalString, optionalStringArray, type JsonRecord } from '../common/json.js';
import { MATRIX_HOME_PORT, type MatrixHomePort } from '../port.js';
import { deviceView } from './device-body.js';

/** The account's devices, as replicated on every home. */
@Injectable()
export class DevicesService {
  constructor(
    @Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort,
    private readonly auth: AuthService,
    private readonly uia: UiaService,
  ) {}

  /** Every device of the account. */
  async list(session: MatrixSession): Promise<{ devices: JsonRecord[] }> {
    const state = await this.port.state(session.serverName);
    return { devices: Object.entries(state.devices).map(([id, body]) => deviceView(id, body)) };
  }

  /** One device, or M_NOT_FOUND. */
  async get(session: MatrixSession, deviceId: string): Promise<JsonRecord> {
    const state = await this.port.state(session.serverName);
    const body = state.devices[deviceId];
    if (body === undefined) throw new MatrixError('M_NOT_FOUND', 'Unknown device.');
    return deviceView(deviceId, body);
  }

  /** Renames a device (a `device.put` op). */
  async update(session: MatrixSession, deviceId: string, input: unknown): Promise<Record<string, never>> {
    const displayName = optionalString(bodyOf(input), 'display_name', 255);
    const state = await this.port.state(session.serverName);
    const body = state.devices[deviceId];
    if (body === undefined) throw new MatrixError('M_NOT_FOUND', 'Unknown device.');
    if (displayName !== undefined && displayName !== body['display_name']) {
      await this.port.applyLocal(session.serverName, [
        { op: 'device.put', key: deviceId, body: { ...body, display_name: displayName } },
      ]);
    }
    return {};
  }

  /** Deletes one device after user-interactive auth (a `device.delete` op). */
  async delete(session: MatrixSession, deviceId: string, input: unknown): Promise<Record<string, never>> {
    const body = bodyOf(input);
    const state = await this.port.state(session.serverName);
    if (state.devices[deviceId] === undefined) throw new MatrixError('M_NOT_FOUND', 'Unknown device.');
    await this.uia.require(session, body['auth']);
    await this.auth.deleteDevices(session.serverName, [deviceId]);
    return {};
  }

  /** Deletes several devices after user-interactive auth. */
  async deleteMany(session: MatrixSession, input: unknown): Promise<Record<string, never>> {
    const body = bodyOf(input);
    const devices = optionalStringArray(body, 'devices', 500);
    if (devices === undefined) throw new MatrixError('M_MISSING_PARAM', 'devices is required.');
    await this.uia.require(session, body['auth']);
    await this.auth.deleteDevices(session.serverName, devices);
    return {};
  }
}
