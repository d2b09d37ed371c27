import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsObject, IsOptional, IsString, MaxLength } from 'class-validator';
import type { EnrollRequest, EnrollResponse } from '@polyhome/p2p';

/** POST /_polyhome/v1/enroll (and the libp2p request, checked with the same rules). */
export class EnrollDto implements EnrollRequest {
  @ApiProperty({
    description: 'The signed account document (polyhome.account) naming this server (its PeerId) as a home.',
    type: Object,
  })
  @IsObject()
  document!: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'Enrollment token, when the server’s policy is `token`.' })
  @IsOptional()
  @IsString()
  @MaxLength(256)
  token?: string;
}

/** An enrollment's answer: the account now hosted, and this server's PeerId and addresses. */
export class EnrolledDto implements EnrollResponse {
  @ApiProperty({ example: '@alice:0a1b...' })
  user_id!: string;

  @ApiProperty({ example: '12D3KooW...' })
  peer_id!: string;

  @ApiProperty({ type: [String], description: 'libp2p addresses of this server, with /p2p/<PeerId>.' })
  addrs!: string[];
}
