import { ApiProperty } from '@nestjs/swagger';

/** A new `m.login.token`, shown once. */
export class LoginTokenDto {
  @ApiProperty({ description: 'Token for `m.login.token`; single use.' })
  login_token!: string;

  @ApiProperty({ description: 'Milliseconds until it expires.', example: 120000 })
  expires_in_ms!: number;
}
