import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import type { AccountDocument } from '@polyhome/identity';
import { AdminApi } from '../admin/admin-api.decorator.js';
import { PageQueryDto, type Page } from '../common/pagination.js';
import { AddHomeDto, CreateAccountDto } from './accounts.dto.js';
import { AccountsService, type AccountDetail, type AccountSummary, type HomeStatusView } from './accounts.service.js';

/** The accounts this server hosts, for operators. */
@AdminApi('accounts')
@Controller('admin/v1/accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  /** GET /admin/v1/accounts: hosted accounts, by server name, paginated. */
  @Get()
  list(@Query() query: PageQueryDto): Promise<Page<AccountSummary>> {
    return this.accounts.list(query);
  }

  /** POST /admin/v1/accounts: creates a hosted account (this server holds its key, sealed). */
  @Post()
  create(@Body() body: CreateAccountDto): Promise<AccountSummary> {
    return this.accounts.createHosted(body.localpart, body.password);
  }

  /** GET /admin/v1/accounts/{userId}: document, custody, and each home's sync status. */
  @Get(':userId')
  get(@Param('userId') userId: string): Promise<AccountDetail> {
    return this.accounts.detail(userId);
  }

  /** DELETE /admin/v1/accounts/{userId}: stops hosting it (a hosted account's key and data are destroyed). */
  @Delete(':userId')
  @HttpCode(200)
  remove(@Param('userId') userId: string): Promise<Record<string, never>> {
    return this.accounts.remove(userId).then(() => ({}));
  }

  /** GET /admin/v1/accounts/{userId}/devices: the account's devices, as replicated. */
  @Get(':userId/devices')
  devices(@Param('userId') userId: string): Promise<{ devices: Array<Record<string, unknown>> }> {
    return this.accounts.devices(userId);
  }

  /** GET /admin/v1/accounts/{userId}/memberships: the account's room memberships, as replicated. */
  @Get(':userId/memberships')
  memberships(@Param('userId') userId: string): Promise<{ memberships: Array<Record<string, unknown>> }> {
    return this.accounts.memberships(userId);
  }

  /** GET /admin/v1/accounts/{userId}/homes: the homes in the document, with their sync status. */
  @Get(':userId/homes')
  homes(@Param('userId') userId: string): Promise<{ homes: HomeStatusView[] }> {
    return this.accounts.detail(userId).then((d) => ({ homes: d.homes }));
  }

  /** POST /admin/v1/accounts/{userId}/homes: signs a document adding a home to a hosted account, and enrolls it. */
  @Post(':userId/homes')
  addHome(@Param('userId') userId: string, @Body() body: AddHomeDto): Promise<AccountDocument> {
    return this.accounts.addHomeByAddress(userId, body);
  }

  /** DELETE /admin/v1/accounts/{userId}/homes/{peerId}: revokes a home of a hosted account. */
  @Delete(':userId/homes/:peerId')
  @HttpCode(200)
  removeHome(@Param('userId') userId: string, @Param('peerId') peerId: string): Promise<AccountDocument> {
    return this.accounts.removeHome(userId, peerId);
  }
}
