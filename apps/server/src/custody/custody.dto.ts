import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { MIN_PASSPHRASE_LENGTH } from '@polyhome/identity';
import { IsOptional, IsString, Length, Matches, MaxLength, MinLength } from 'class-validator';

/** POST /_polyhome/v1/custody. */
export class TakeCustodyDto {
  @ApiProperty({ example: '@alice:0a1b...' })
  @IsString()
  @MaxLength(255)
  user_id!: string;

  @ApiProperty({ description: 'The account’s password.' })
  @IsString()
  @MaxLength(512)
  password!: string;

  @ApiProperty({ description: 'Passphrase the export is encrypted with (12 to 1024 characters).' })
  @IsString()
  @MinLength(MIN_PASSPHRASE_LENGTH)
  @MaxLength(1024)
  passphrase!: string;

  @ApiPropertyOptional({
    description:
      'PeerId of the device taking the key. The server adds it to the account document as a client home (signed while it still holds the key), so that device is a home of the account from its first connection.',
    example: '12D3KooW...',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[1-9A-HJ-NP-Za-km-z]{40,60}$/, { message: 'peer_id must be a PeerId (12D3KooW...)' })
  peer_id?: string;

  @ApiPropertyOptional({ description: 'Name of that home in the document (1 to 64 characters).', example: 'laptop' })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  home_name?: string;
}

/** The root key, exported under the passphrase (identity's PHKX format); given once. */
export class CustodyExportDto {
  @ApiProperty({ description: 'Unpadded base64 of the passphrase-encrypted root key (importSecretKey reads it).' })
  export!: string;

  @ApiProperty({ description: 'The account document in force after the handover (names `peer_id` when given).' })
  document!: object;
}
