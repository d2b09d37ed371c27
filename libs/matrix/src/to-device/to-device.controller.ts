import { Body, Controller, Param, Put, UseFilters, UseGuards } from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import { ToDeviceService } from './to-device.service.js';

/** Send-to-device messaging (client-server API). */
@Controller('_matrix/client/v3')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class ToDeviceController {
  constructor(private readonly toDevice: ToDeviceService) {}

  /** PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId} */
  @Put('sendToDevice/:eventType/:txnId')
  send(
    @Session() s: MatrixSession,
    @Param('eventType') eventType: string,
    @Param('txnId') txnId: string,
    @Body() body: unknown,
  ): Promise<Record<string, never>> {
    return this.toDevice.send(s, eventType, txnId, body);
  }
}
