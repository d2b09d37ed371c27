import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { AdminApi, AdminRoute, BAD_PAGE_QUERY } from '../admin/admin-api.decorator.js';
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
  @AdminRoute({
    summary: 'Make an enrollment token (shown once; only its hash is kept)',
    status: 201,
    type: CreatedEnrollmentTokenDto,
    example: {
      token: 'phe_gjjve4vR22JIc47s-aDROJUkXIg-6ebXoH-L1CzEFAc',
      id: 'c28d52cefb82c730',
      uses: 1,
      expires_at: '2026-12-01T18:29:27.916Z',
    },
    errors: [
      {
        errcode: 'M_INVALID_PARAM',
        when: 'uses or expires_in out of range, or an unknown field',
        error: 'uses must not be greater than 1000',
      },
    ],
  })
  create(@Body() body: CreateEnrollmentTokenDto): Promise<CreatedEnrollmentTokenDto> {
    return this.tokens.create(body);
  }

  /** GET /admin/v1/enrollment-tokens: tokens by id, paginated, never the tokens themselves. */
  @Get()
  @AdminRoute({
    summary: 'List enrollment tokens (never the tokens themselves)',
    type: EnrollmentTokensPageDto,
    example: {
      chunk: [
        {
          id: 'c28d52cefb82c730',
          uses_left: 1,
          expires_at: '2026-12-01T18:29:27.916Z',
          created_at: '2026-11-30T18:29:27.918Z',
        },
      ],
    },
    errors: [BAD_PAGE_QUERY],
  })
  list(@Query() query: PageQueryDto): Promise<Page<EnrollmentTokenDto>> {
    return this.tokens.list(query);
  }

  /** DELETE /admin/v1/enrollment-tokens/{id}: revokes a token. */
  @Delete(':id')
  @HttpCode(200)
  @AdminRoute({
    summary: 'Delete (revoke) an enrollment token',
    example: {},
    errors: [
      { errcode: 'M_NOT_FOUND', when: 'no token has this id', error: 'No enrollment token with id c28d52cefb82c730.' },
    ],
  })
  remove(@Param('id') id: string): Promise<Record<string, never>> {
    return this.tokens.remove(id).then(() => ({}));
  }
}
