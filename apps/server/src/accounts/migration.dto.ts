import { ApiProperty, ApiPropertyOptional, IntersectionType } from '@nestjs/swagger';
import { IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';
import { ReasonDto } from '../admin/admin-actions.dto.js';

const MULTIADDR = /\/p2p\/[1-9A-HJ-NP-Za-km-z]{40,60}$/;

/** Where a migration goes: the new provider's server, its enrollment token, the name it gets. */
export class MigrationTargetDto {
  @ApiProperty({
    description: 'The new provider’s server home: its libp2p multiaddr, ending in /p2p/<PeerId>.',
    example: '/dns4/hs.new-provider.example/tcp/4001/p2p/12D3KooW...',
  })
  @IsString()
  @MaxLength(256)
  @Matches(MULTIADDR, { message: 'to must be a multiaddr ending in /p2p/<PeerId>' })
  to!: string;

  @ApiPropertyOptional({ description: 'The new provider’s enrollment token, when it asks for one.' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  token?: string;

  @ApiPropertyOptional({ description: 'Its name in the account document (1 to 64 characters; default `server`).' })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  name?: string;
}

/** POST /admin/v1/accounts/{userId}/migrate. */
export class MigrateDto extends IntersectionType(ReasonDto, MigrationTargetDto) {}

/** POST /_polyhome/v1/migration: the user moves their hosted account, with their password. */
export class UserMigrateDto extends MigrationTargetDto {
  @ApiProperty({ example: '@alice:0a1b...' })
  @IsString()
  @MaxLength(255)
  user_id!: string;

  @ApiProperty({ description: 'The account’s password: the user’s consent to move the key.' })
  @IsString()
  @MaxLength(512)
  password!: string;
}
