import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

/** Most uses one enrollment token may have. */
export const MAX_TOKEN_USES = 1000;

/** Longest lifetime of an enrollment token: 30 days, in seconds. */
export const MAX_TOKEN_LIFETIME_S = 30 * 24 * 3600;

/** Lifetime of an enrollment token when none is given: one day, in seconds. */
export const DEFAULT_TOKEN_LIFETIME_S = 24 * 3600;

/** POST /admin/v1/enrollment-tokens. */
export class CreateEnrollmentTokenDto {
  @ApiPropertyOptional({
    description: 'Enrollments the token allows.',
    minimum: 1,
    maximum: MAX_TOKEN_USES,
    default: 1,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_TOKEN_USES)
  uses?: number;

  @ApiPropertyOptional({
    description: 'Seconds until the token expires (at most 30 days).',
    minimum: 1,
    maximum: MAX_TOKEN_LIFETIME_S,
    default: DEFAULT_TOKEN_LIFETIME_S,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_TOKEN_LIFETIME_S)
  expires_in?: number;
}

/** A new enrollment token: the only time the token itself is shown. */
export class CreatedEnrollmentTokenDto {
  @ApiProperty({ description: 'The token; only its SHA-256 is stored, so it is shown this once.' })
  token!: string;

  @ApiProperty({ description: 'Public id, to list and delete the token.' })
  id!: string;

  @ApiProperty()
  uses!: number;

  @ApiProperty({ description: 'ISO 8601.' })
  expires_at!: string;
}

/** An enrollment token as listed (never the token). */
export class EnrollmentTokenDto {
  @ApiProperty()
  id!: string;

  @ApiProperty()
  uses_left!: number;

  @ApiProperty({ description: 'ISO 8601.', nullable: true, type: String })
  expires_at!: string | null;

  @ApiProperty({ description: 'ISO 8601.' })
  created_at!: string;
}

/** A page of enrollment tokens. */
export class EnrollmentTokensPageDto {
  @ApiProperty({ type: [EnrollmentTokenDto] })
  chunk!: EnrollmentTokenDto[];

  @ApiPropertyOptional({ description: 'Cursor of the next page; absent on the last page.' })
  next_from?: string;
}
