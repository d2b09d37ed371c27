import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ErrorBodyDto } from '../common/error-body.dto.js';
import { CustodyExportDto, TakeCustodyDto } from './custody.dto.js';
import { CustodyService } from './custody.service.js';

/** Custody handover, authenticated by the account's password (no admin token: it is the user's own act). */
@Controller('_polyhome/v1/custody')
@ApiTags('custody')
export class CustodyController {
  constructor(private readonly custody: CustodyService) {}

  /** POST /_polyhome/v1/custody: hands a hosted account's root key to its user, once. */
  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Take custody of a hosted account’s root key (once)' })
  @ApiOkResponse({ type: CustodyExportDto })
  @ApiForbiddenResponse({
    description: 'Wrong user ID or password, or the key was already handed over.',
    type: ErrorBodyDto,
  })
  take(@Body() body: TakeCustodyDto): Promise<CustodyExportDto> {
    return this.custody.takeCustody(body);
  }
}
