import { Body, Controller, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiForbiddenResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { EnrollResponse } from '@polyhome/p2p';
import { ErrorBodyDto } from '../common/error-body.dto.js';
import { EnrolledDto, EnrollDto } from './enrollment.dto.js';
import { EnrollmentService } from './enrollment.service.js';

/** Enrollment over HTTP: unauthenticated (the document's signature and the token are the credentials). */
@Controller('_polyhome/v1/enroll')
@ApiTags('enrollment')
export class EnrollmentController {
  constructor(private readonly enrollment: EnrollmentService) {}

  /** POST /_polyhome/v1/enroll: makes this server a home of the account whose signed document names it. */
  @Post()
  @ApiOperation({ summary: 'Enroll this server as a home of an account (co-hosting)' })
  @ApiCreatedResponse({ type: EnrolledDto })
  @ApiForbiddenResponse({
    description: 'Policy closed, or a missing, unknown, expired or used-up token.',
    type: ErrorBodyDto,
  })
  enroll(@Body() body: EnrollDto): Promise<EnrollResponse> {
    return this.enrollment.enroll(body, null);
  }
}
