import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { PageQueryDto } from '../common/pagination.js';

/** Longest reason kept in the audit log. */
export const MAX_REASON_LENGTH = 1_000;

/** Longest search string (a user ID or room ID is at most 255 characters). */
const MAX_SEARCH_LENGTH = 255;

/** Body of every destructive admin route: why, for the audit log. */
export class ReasonDto {
  @ApiProperty({
    description: 'Why the operator does this (1 to 1000 characters), kept in the audit log (GET /admin/v1/audit).',
    example: 'Spam reported by three users (ticket 4211)',
    minLength: 1,
    maxLength: MAX_REASON_LENGTH,
  })
  @IsString()
  @Matches(/\S/, { message: 'reason must say why (it is written to the audit log)' })
  @MaxLength(MAX_REASON_LENGTH)
  reason!: string;
}

/** POST /admin/v1/accounts/{userId}/resync. */
export class ResyncDto extends ReasonDto {
  @ApiProperty({
    description:
      'The PeerId of a current home of the account to resync with (GET /admin/v1/accounts/{userId} lists them).',
    example: '12D3KooWK8hKAmj5csaNbGtkJv9HqPc7KPK4GTWePdSzhjz7oP6x',
    minLength: 1,
    maxLength: 128,
  })
  @IsString()
  @MinLength(1)
  @MaxLength(128)
  home!: string;
}

/** POST /admin/v1/accounts/{userId}/password. */
export class ResetPasswordDto extends ReasonDto {
  @ApiProperty({ description: 'The new password (8 to 512 characters). Never stored; its scrypt verifier replicates.' })
  @IsString()
  @MinLength(8)
  @MaxLength(512)
  password!: string;

  @ApiPropertyOptional({
    description: 'Also end every access token this server issued for the account (default true).',
    default: true,
  })
  @IsOptional()
  @IsBoolean()
  logout_devices?: boolean;
}

/** GET /admin/v1/accounts: a page, optionally of the accounts whose user ID contains `search`. */
export class AccountListQueryDto extends PageQueryDto {
  @ApiPropertyOptional({
    description:
      'Only accounts whose user ID contains this text, case-insensitively (a localpart, or part of one). ' +
      '`_` and `%` are plain characters.',
    maxLength: MAX_SEARCH_LENGTH,
    example: 'alice',
  })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_SEARCH_LENGTH)
  search?: string;
}

/** GET /admin/v1/rooms: a page, optionally of the rooms whose ID or name contains `search`. */
export class RoomListQueryDto extends PageQueryDto {
  @ApiPropertyOptional({
    description: 'Only rooms whose ID or name contains this text, case-insensitively.',
    maxLength: MAX_SEARCH_LENGTH,
  })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_SEARCH_LENGTH)
  search?: string;
}

/** GET /admin/v1/audit: a page, newest first, optionally of one target. */
export class AuditQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Only entries about this target (a user ID, a room ID).' })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_SEARCH_LENGTH)
  target?: string;
}

/** DELETE /admin/v1/rooms/{roomId}. */
export class DeleteRoomDto extends ReasonDto {
  @ApiPropertyOptional({
    description:
      'Also block the room (as PUT /admin/v1/rooms/{roomId}/block), before its users here leave: none of them ' +
      'may join it again, nor be invited into it (default false).',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  block?: boolean;
}

/** PUT /admin/v1/rooms/{roomId}/block. */
export class BlockRoomDto extends ReasonDto {
  @ApiProperty({
    description: 'true blocks the room (or gives a blocked room the new reason); false lifts the block.',
    example: true,
  })
  @IsBoolean()
  block!: boolean;
}
