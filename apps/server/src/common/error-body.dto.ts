import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { Errcode } from './api-error.js';

/** The one error body of every route, as the OpenAPI document describes it. */
export class ErrorBodyDto {
  @ApiProperty({ example: 'M_UNKNOWN_TOKEN', description: 'Matrix-style error code.' })
  errcode!: Errcode;

  @ApiProperty({ example: 'Unknown admin token.' })
  error!: string;

  @ApiPropertyOptional({ description: 'On M_LIMIT_EXCEEDED: milliseconds to wait before retrying.' })
  retry_after_ms?: number;
}
