import { ApiProperty } from '@nestjs/swagger';
import { IsString, MaxLength, MinLength } from 'class-validator';

/** Shortest passphrase accepted for a key export: the export leaves the server, so it must resist guessing. */
export const MIN_PASSPHRASE_LENGTH = 12;

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
}

/** The root key, exported under the passphrase (identity's PHKX format); given once. */
export class CustodyExportDto {
  @ApiProperty({ description: 'Unpadded base64 of the passphrase-encrypted root key (importSecretKey reads it).' })
  export!: string;
}
