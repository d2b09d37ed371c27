import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, UseFilters, UseGuards } from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import type { JsonRecord } from '../common/json.js';
import { DevicesService } from './devices.service.js';

/** Device management. */
@Controller('_matrix/client/v3')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class DevicesController {
  constructor(private readonly devices: DevicesService) {}

  /** GET /_matrix/client/v3/devices */
  @Get('devices')
  getDevices(@Session() session: MatrixSession): Promise<{ devices: JsonRecord[] }> {
    return this.devices.list(session);
  }

  /** GET /_matrix/client/v3/devices/{deviceId} */
  @Get('devices/:deviceId')
  getDevice(@Session() session: MatrixSession, @Param('deviceId') deviceId: string): Promise<JsonRecord> {
    return this.devices.get(session, deviceId);
  }

  /** PUT /_matrix/client/v3/devices/{deviceId} */
  @Put('devices/:deviceId')
  updateDevice(
    @Session() session: MatrixSession,
    @Param('deviceId') deviceId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<Record<string, never>> {
    return this.devices.update(session, deviceId, body);
  }

  /** DELETE /_matrix/client/v3/devices/{deviceId} */
  @Delete('devices/:deviceId')
  deleteDevice(
    @Session() session: MatrixSession,
    @Param('deviceId') deviceId: string,
    @Body() body: Record<string, unknown>,
  ): Promise<Record<string, never>> {
    return this.devices.delete(session, deviceId, body);
  }

  /** POST /_matrix/client/v3/delete_devices */
  @Post('delete_devices')
  @HttpCode(200)
  deleteDevices(
    @Session() session: MatrixSession,
    @Body() body: Record<string, unknown>,
  ): Promise<Record<string, never>> {
    return this.devices.deleteMany(session, body);
  }
}
