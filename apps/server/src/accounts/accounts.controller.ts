import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import type { AccountDocument } from '@polyhome/identity';
import {
  AdminApi,
  AdminRoute,
  BAD_PAGE_QUERY,
  EXAMPLE_PEER_ID,
  MISSING_REASON,
  EXAMPLE_USER_ID,
  USER_ID_ERRORS,
} from '../admin/admin-api.decorator.js';
import { AccountListQueryDto, ReasonDto } from '../admin/admin-actions.dto.js';
import { PageQueryDto, type Page } from '../common/pagination.js';
import { AccountAdminService } from './account-admin.service.js';
import { AddHomeDto, CreateAccountDto } from './accounts.dto.js';
import { AccountsService, type AccountDetail, type AccountSummary, type HomeStatusView } from './accounts.service.js';

const SERVER_NAME = EXAMPLE_USER_ID.slice(EXAMPLE_USER_ID.indexOf(':') + 1);
const ADDR = `/ip4/203.0.113.5/tcp/4001/p2p/${EXAMPLE_PEER_ID}`;
const SUMMARY = {
  user_id: EXAMPLE_USER_ID,
  server_name: SERVER_NAME,
  custody: 'hosted',
  status: 'active',
  doc_seq: 1,
  created_at: '2026-11-30T18:29:19.273Z',
};
const HOME = { name: 'server', role: 'server', addrs: [ADDR], peer_id: EXAMPLE_PEER_ID };
const HOME_STATUS = {
  ...HOME,
  self: true,
  connected: false,
  last_connected_at: null,
  last_seen_at: null,
  acked: {},
  pending_ops: 0,
};
const DOCUMENT = {
  type: 'polyhome.account',
  user_id: EXAMPLE_USER_ID,
  seq: 2,
  ts: 1796063359216,
  homes: [HOME, { name: 'laptop', role: 'client', addrs: [], peer_id: '12D3KooW...' }],
  revoked: {},
  signatures: { [SERVER_NAME]: { 'ed25519:root': '...' } },
};
const NOT_HOSTED_HERE = USER_ID_ERRORS;
const SELF_CUSTODY = {
  errcode: 'M_FORBIDDEN',
  when: 'the user holds the key (custody handed over, or a co-hosted account): this server cannot sign for it',
  error: `${EXAMPLE_USER_ID} holds its own key; this server cannot sign for it.`,
} as const;

/** The accounts this server hosts, for operators. */
@AdminApi('accounts')
@Controller('admin/v1/accounts')
export class AccountsController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly actions: AccountAdminService,
  ) {}

  /** GET /admin/v1/accounts: hosted accounts, by user ID, paginated, optionally searched. */
  @AdminRoute({
    summary: 'List hosted accounts, by user ID; `search` keeps those whose user ID contains it',
    example: { chunk: [SUMMARY], next_from: 'ZmZkNzRl...' },
    errors: [BAD_PAGE_QUERY],
  })
  @Get()
  list(@Query() query: AccountListQueryDto): Promise<Page<AccountSummary>> {
    return this.accounts.list(query);
  }

  /** POST /admin/v1/accounts: creates a hosted account (this server holds its key, sealed). */
  @AdminRoute({
    summary: 'Create a hosted account (this server holds its root key, sealed)',
    description:
      'A new root key is made and sealed with SEALING_KEY; the user ID is `@<localpart>:<hex of the key>`, so the same ' +
      'localpart twice would make two accounts: a localpart this server hosts already is refused (M_USER_IN_USE, ' +
      'naming the account) unless `allow_duplicate_localpart` is true. With `password`, the account can log in ' +
      'with m.login.password.',
    status: 201,
    example: SUMMARY,
    errors: [
      {
        errcode: 'M_INVALID_PARAM',
        when: 'a bad localpart or password, or an unknown field',
        error: 'localpart must be 1 to 64 characters of a-z, 0-9, . _ = / -',
      },
      {
        errcode: 'M_USER_IN_USE',
        when: 'this server hosts an account with that localpart already, and allow_duplicate_localpart is not true',
        error: `This server hosts alice already: ${EXAMPLE_USER_ID}. Use that account, or send "allow_duplicate_localpart": true to make a second @alice with another key.`,
      },
    ],
  })
  @Post()
  create(@Body() body: CreateAccountDto): Promise<AccountSummary> {
    return this.accounts.createHosted(body.localpart, body.password, body.allow_duplicate_localpart === true);
  }

  /** GET /admin/v1/accounts/{userId}: document, custody, homes with sync status, devices, rooms, activity. */
  @AdminRoute({
    summary:
      'One hosted account: its document, custody, the sync status of each home, its devices, rooms and last activity',
    example: {
      ...SUMMARY,
      document: DOCUMENT,
      homes: [HOME_STATUS],
      revoked: {},
      equivocators: [],
      document_equivocation: null,
      devices: [{ device_id: 'PHONE', display_name: 'Element on phone', home: EXAMPLE_PEER_ID }],
      rooms: [{ room_id: '!room:example', membership: 'join' }],
      last_activity: {
        last_op_at: '2026-11-30T18:31:02.004Z',
        last_login_at: '2026-11-30T18:30:55.117Z',
        access_tokens: 1,
      },
    },
    errors: NOT_HOSTED_HERE,
  })
  @Get(':userId')
  get(@Param('userId') userId: string): Promise<AccountDetail> {
    return this.accounts.detail(userId);
  }

  /** DELETE /admin/v1/accounts/{userId}: stops hosting it (a hosted account's key and data are destroyed). */
  @AdminRoute({
    summary: 'Stop hosting an account (a hosted account’s key and data are destroyed); body `{ reason }`',
    example: {},
    errors: [...NOT_HOSTED_HERE, MISSING_REASON],
  })
  @Delete(':userId')
  @HttpCode(200)
  remove(@Param('userId') userId: string, @Body() body: ReasonDto): Promise<Record<string, never>> {
    return this.actions.remove(userId, body.reason).then(() => ({}));
  }

  /** GET /admin/v1/accounts/{userId}/devices: the account's devices, as replicated, paginated. */
  @AdminRoute({
    summary: 'The account’s devices, as replicated (on every home), by device ID',
    example: { chunk: [{ device_id: 'PHONE', display_name: 'Element on phone', home: EXAMPLE_PEER_ID }] },
    errors: [...NOT_HOSTED_HERE, BAD_PAGE_QUERY],
  })
  @Get(':userId/devices')
  devices(@Param('userId') userId: string, @Query() query: PageQueryDto): Promise<Page<Record<string, unknown>>> {
    return this.accounts.devices(userId, query);
  }

  /** GET /admin/v1/accounts/{userId}/memberships: the account's room memberships, as replicated, paginated. */
  @AdminRoute({
    summary: 'The account’s room memberships, as replicated, by room ID',
    example: { chunk: [{ room_id: '!room:example', membership: 'join' }] },
    errors: [...NOT_HOSTED_HERE, BAD_PAGE_QUERY],
  })
  @Get(':userId/memberships')
  memberships(@Param('userId') userId: string, @Query() query: PageQueryDto): Promise<Page<Record<string, unknown>>> {
    return this.accounts.memberships(userId, query);
  }

  /** GET /admin/v1/accounts/{userId}/homes: the homes in the document, with their sync status. */
  @AdminRoute({
    summary: 'The homes in the account’s document, with their sync status',
    example: { homes: [HOME_STATUS] },
    errors: NOT_HOSTED_HERE,
  })
  @Get(':userId/homes')
  homes(@Param('userId') userId: string): Promise<{ homes: HomeStatusView[] }> {
    return this.accounts.detail(userId).then((d) => ({ homes: d.homes }));
  }

  /** POST /admin/v1/accounts/{userId}/homes: signs a document adding a home to a hosted account, and enrolls it. */
  @AdminRoute({
    summary: 'Add a home to a hosted account (a server home is enrolled over libp2p)',
    description:
      'Signs the next account document naming the home. A `server` home is enrolled first over ' +
      '/polyhome/enroll/1.0.0 (with `token` when it asks for one); if it refuses, the document stays as it was.',
    status: 201,
    example: DOCUMENT,
    errors: [
      ...NOT_HOSTED_HERE,
      {
        errcode: 'M_INVALID_PARAM',
        when: 'a bad multiaddr, role or pairing code',
        error: 'multiaddr must end in /p2p/<PeerId>',
      },
      SELF_CUSTODY,
      {
        errcode: 'M_FORBIDDEN',
        when: 'the remote server refused the enrollment (its own errcode is passed on)',
        error: `The server at ${ADDR} refused the enrollment: Unknown enrollment token.`,
      },
      {
        errcode: 'M_UNAVAILABLE',
        when: 'the remote server could not be reached',
        error: `Could not enroll the server at ${ADDR}: connection error 203.0.113.5:4001: connect ECONNREFUSED`,
      },
    ],
  })
  @Post(':userId/homes')
  addHome(@Param('userId') userId: string, @Body() body: AddHomeDto): Promise<AccountDocument> {
    return this.accounts.addHomeByAddress(userId, body);
  }

  /** DELETE /admin/v1/accounts/{userId}/homes/{peerId}: revokes a home of a hosted account. */
  @AdminRoute({
    summary: 'Revoke a home of a hosted account; body `{ reason }`',
    example: { ...DOCUMENT, seq: 3, homes: [HOME], revoked: { '12D3KooW...': 41 } },
    errors: [
      ...NOT_HOSTED_HERE,
      {
        errcode: 'M_INVALID_PARAM',
        when: 'the PeerId is not a home of the account',
        error: `Home ${EXAMPLE_PEER_ID} is not a home of this account`,
      },
      SELF_CUSTODY,
      {
        errcode: 'M_FORBIDDEN',
        when: 'the home is this server',
        error: 'This server cannot revoke itself; delete the account to stop hosting it.',
      },
      MISSING_REASON,
    ],
  })
  @Delete(':userId/homes/:peerId')
  @HttpCode(200)
  removeHome(
    @Param('userId') userId: string,
    @Param('peerId') peerId: string,
    @Body() body: ReasonDto,
  ): Promise<AccountDocument> {
    return this.actions.removeHome(userId, peerId, body.reason);
  }
}
