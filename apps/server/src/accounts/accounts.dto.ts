import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, IsString, Length, Matches, MaxLength, MinLength } from 'class-validator';

/** POST /admin/v1/accounts: a hosted account. */
export class CreateAccountDto {
  @ApiProperty({ description: 'Localpart of the user ID: [a-z0-9._=/-], 1 to 64 characters.', example: 'alice' })
  @IsString()
  @Matches(/^[a-z0-9._=/-]{1,64}$/, { message: 'localpart must be 1 to 64 characters of a-z, 0-9, . _ = / -' })
  localpart!: string;

  @ApiPropertyOptional({ description: 'Password for m.login.password (8 to 512 characters).' })
  @IsOptional()
  @IsString()
  @MinLength(8)
  @MaxLength(512)
  password?: string;

  @ApiPropertyOptional({
    description:
      'Create the account even when this server hosts an account with the same localpart already (a second ' +
      '`@<localpart>:<another key>`). Without it, such a request is refused with M_USER_IN_USE.',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  allow_duplicate_localpart?: boolean;
}

/** POST /admin/v1/accounts/{userId}/homes: add a home to a hosted account. */
export class AddHomeDto {
  @ApiProperty({
    description: 'The home’s libp2p multiaddr, ending in /p2p/<PeerId>.',
    example: '/ip4/192.0.2.1/tcp/4001/p2p/12D3KooW...',
  })
  @IsString()
  @MaxLength(256)
  @Matches(/\/p2p\/[1-9A-HJ-NP-Za-km-z]{40,60}$/, { message: 'multiaddr must end in /p2p/<PeerId>' })
  multiaddr!: string;

  @ApiProperty({ enum: ['server', 'client'] })
  @IsIn(['server', 'client'])
  role!: 'server' | 'client';

  @ApiProperty({ description: 'A name for operators (1 to 64 characters).', example: 'laptop' })
  @IsString()
  @Length(1, 64)
  name!: string;

  @ApiPropertyOptional({ description: 'Enrollment token of the remote server, when it asks for one.' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  token?: string;

  @ApiPropertyOptional({
    description:
      'For a client made with `polyhome init --join`: the pairing code it printed. This server proves it to the ' +
      'client, which takes in no account otherwise. Posting it again for a client already listed only renews it.',
    example: '7KQ2M-XW4PD',
  })
  @IsOptional()
  @IsString()
  @MaxLength(32)
  pairing_code?: string;
}
