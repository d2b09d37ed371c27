import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Post,
  Put,
  Query,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import { MatrixError } from '../common/errors.js';
import type { JsonRecord } from '../common/json.js';
import { AccountService } from './account.service.js';
import type { PushRule, PushRuleset } from './push-rules.js';

type Empty = Record<string, never>;

/** Account data, push rules and filters of the session's own user. */
@Controller('_matrix/client/v3')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class AccountController {
  constructor(private readonly account: AccountService) {}

  @Get('user/:userId/account_data/:type')
  getAccountData(
    @Session() s: MatrixSession,
    @Param('userId') userId: string,
    @Param('type') type: string,
  ): Promise<JsonRecord> {
    return this.account.getAccountData(s, userId, type);
  }

  @Put('user/:userId/account_data/:type')
  putAccountData(
    @Session() s: MatrixSession,
    @Param('userId') userId: string,
    @Param('type') type: string,
    @Body() body: unknown,
  ): Promise<Empty> {
    return this.account.putAccountData(s, userId, type, body);
  }

  @Get('user/:userId/rooms/:roomId/account_data/:type')
  getRoomAccountData(
    @Session() s: MatrixSession,
    @Param('userId') userId: string,
    @Param('roomId') roomId: string,
    @Param('type') type: string,
  ): Promise<JsonRecord> {
    return this.account.getAccountData(s, userId, type, roomId);
  }

  @Put('user/:userId/rooms/:roomId/account_data/:type')
  putRoomAccountData(
    @Session() s: MatrixSession,
    @Param('userId') userId: string,
    @Param('roomId') roomId: string,
    @Param('type') type: string,
    @Body() body: unknown,
  ): Promise<Empty> {
    return this.account.putAccountData(s, userId, type, body, roomId);
  }

  @Post('user/:userId/filter')
  @HttpCode(200)
  createFilter(
    @Session() s: MatrixSession,
    @Param('userId') userId: string,
    @Body() body: unknown,
  ): Promise<{ filter_id: string }> {
    return this.account.createFilter(s, userId, body);
  }

  @Get('user/:userId/filter/:filterId')
  getFilter(
    @Session() s: MatrixSession,
    @Param('userId') userId: string,
    @Param('filterId') filterId: string,
  ): Promise<JsonRecord> {
    return this.account.getFilter(s, userId, filterId);
  }

  @Put('profile/:userId/:field')
  setProfile(
    @Session() s: MatrixSession,
    @Param('userId') userId: string,
    @Param('field') field: string,
    @Body() body: unknown,
  ): Promise<Empty> {
    return this.account.setProfile(s, userId, profileField(field), body);
  }

  @Get('pushrules')
  async pushRules(@Session() s: MatrixSession): Promise<{ global: PushRuleset }> {
    return { global: await this.account.pushRules(s) };
  }

  @Get('pushrules/global')
  globalPushRules(@Session() s: MatrixSession): Promise<PushRuleset> {
    return this.account.pushRules(s);
  }

  @Get('pushrules/:scope/:kind/:ruleId')
  pushRule(
    @Session() s: MatrixSession,
    @Param('scope') scope: string,
    @Param('kind') kind: string,
    @Param('ruleId') ruleId: string,
  ): Promise<PushRule> {
    return this.account.pushRule(s, scope, kind, ruleId);
  }

  @Put('pushrules/:scope/:kind/:ruleId')
  putPushRule(
    @Session() s: MatrixSession,
    @Param('scope') scope: string,
    @Param('kind') kind: string,
    @Param('ruleId') ruleId: string,
    @Query() query: Record<string, unknown>,
    @Body() body: unknown,
  ): Promise<Empty> {
    return this.account.putPushRule(s, scope, kind, ruleId, query, body);
  }

  @Delete('pushrules/:scope/:kind/:ruleId')
  deletePushRule(
    @Session() s: MatrixSession,
    @Param('scope') scope: string,
    @Param('kind') kind: string,
    @Param('ruleId') ruleId: string,
  ): Promise<Empty> {
    return this.account.deletePushRule(s, scope, kind, ruleId);
  }

  @Get('pushrules/:scope/:kind/:ruleId/:attribute')
  async pushRuleAttribute(
    @Session() s: MatrixSession,
    @Param('scope') scope: string,
    @Param('kind') kind: string,
    @Param('ruleId') ruleId: string,
    @Param('attribute') attribute: string,
  ): Promise<JsonRecord> {
    const rule = await this.account.pushRule(s, scope, kind, ruleId);
    const name = ruleAttribute(attribute);
    return { [name]: rule[name] };
  }

  @Put('pushrules/:scope/:kind/:ruleId/:attribute')
  setPushRuleAttribute(
    @Session() s: MatrixSession,
    @Param('scope') scope: string,
    @Param('kind') kind: string,
    @Param('ruleId') ruleId: string,
    @Param('attribute') attribute: string,
    @Body() body: unknown,
  ): Promise<Empty> {
    return this.account.setPushRuleAttribute(s, scope, kind, ruleId, ruleAttribute(attribute), body);
  }
}

/** Profiles are public: read without a token (as the spec allows), for accounts hosted here. */
@Controller('_matrix/client/v3')
@UseFilters(MatrixExceptionFilter)
export class ProfileController {
  constructor(private readonly account: AccountService) {}

  @Get('profile/:userId')
  profile(@Param('userId') userId: string): Promise<JsonRecord> {
    return this.account.getProfile(userId);
  }

  @Get('profile/:userId/:field')
  profileField(@Param('userId') userId: string, @Param('field') field: string): Promise<JsonRecord> {
    return this.account.getProfile(userId, profileField(field));
  }
}

function profileField(field: string): 'displayname' | 'avatar_url' {
  if (field === 'displayname' || field === 'avatar_url') return field;
  throw new MatrixError(
    'M_UNRECOGNIZED',
    `Profile fields here are displayname and avatar_url, not ${field.slice(0, 40)}.`,
  );
}

function ruleAttribute(attribute: string): 'enabled' | 'actions' {
  if (attribute === 'enabled' || attribute === 'actions') return attribute;
  throw new MatrixError(
    'M_UNRECOGNIZED',
    `Push-rule attributes are enabled and actions, not ${attribute.slice(0, 40)}.`,
  );
}
