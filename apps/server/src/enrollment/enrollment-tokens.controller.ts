import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation } from '@nestjs/swagger';
import { AdminApi } from '../admin/admin-api.decorator.js';
import { PageQueryDto, type Page } from '../common/pagination.js';
import {
  CreatedEnrollmentTokenDto,
  CreateEnrollmentTokenDto,
  EnrollmentTokensPageDto,
  type EnrollmentTokenDto,
} from './enrollment-tokens.dto.js';
import { EnrollmentTokensService } from './enrollment-tokens.service.js';

/** Enrollment tokens, for operators who let others enroll this server as a home of their account. */
@Controller('admin/v1/enrollment-tokens')
@AdminApi('enrollment')
export class EnrollmentTokensController {
  constructor(private readonly tokens: EnrollmentTokensService) {}

  /** POST /admin/v1/enrollment-tokens: a new token, shown once. */
  @Post()
  @ApiOperation({ summary: 'Make an enrollment token (shown once; only its hash is kept)' })
  @ApiCreatedResponse({ type: CreatedEnrollmentTokenDto })
  create(@Body() body: CreateEnrollmentTokenDto): Promise<CreatedEnrollmentTokenDto> {
    return this.tokens.create(body);
  }

  /** GET /admin/v1/enrollment-tokens: tokens by id, paginated, never the tokens themselves. */
  @Get()
  @ApiOperation({ summary: 'List enrollment tokens' })
  @ApiOkResponse({ type: EnrollmentTokensPageDto })
  list(@Query() query: PageQueryDto): Promise<Page<EnrollmentTokenDto>> {
    return this.tokens.list(query);
  }

  /** DELETE /admin/v1/enrollment-tokens/{id}: revokes a token. */
  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Delete an enrollment token' })
  remove(@Param('id') id: string): Promise<Record<string, never>> {
    return this.tokens.remove(id).then(() => ({}));
  }
}
