import { Body, Controller, Delete, HttpCode, Param, Post } from '@nestjs/common';
import {
  AdminApi,
  AdminRoute,
  EXAMPLE_USER_ID,
  MISSING_REASON,
  USER_ID_ERRORS,
  type AdminErrorAnswer,
} from '../admin/admin-api.decorator.js';
import { ReasonDto, ResetPasswordDto } from '../admin/admin-actions.dto.js';
import type { AccountSummary } from './accounts.service.js';
import { AccountAdminService, type DeactivationView } from './account-admin.service.js';

const SUMMARY = {
  user_id: EXAMPLE_USER_ID,
  server_name: EXAMPLE_USER_ID.slice(EXAMPLE_USER_ID.indexOf(':') + 1),
  custody: 'hosted',
  status: 'active',
  doc_seq: 1,
  created_at: '2026-11-30T18:29:19.273Z',
};

function already(status: string): AdminErrorAnswer {
  return {
    errcode: 'M_INVALID_PARAM',
    when: `the account is ${status} already`,
    error: `${EXAMPLE_USER_ID} is ${status} already.`,
  };
}

/** What an operator does to an account: deactivate, take down, reactivate, reset its password, delete a device. */
@AdminApi('accounts')
@Controller('admin/v1/accounts')
export class AccountActionsController {
  constructor(private readonly actions: AccountAdminService) {}

  /** POST /admin/v1/accounts/{userId}/deactivate. */
  @AdminRoute({
    summary: 'Deactivate an account: leave its rooms, refuse logins, revoke tokens, delete the devices logged in here',
    description:
      'The user leaves every room through the room engine (rooms this server does not hold are left by a replicated ' +
      '`member.set` op, enacted by the homes that hold them). Logins and tokens are refused here from then on; the ' +
      'tokens this server issued are deleted, and the devices logged in here are deleted on every home ' +
      '(`device.delete`). The document, ops, state and evidence are kept; `reactivate` serves the account again ' +
      '(it does not rejoin rooms). Written to the audit log with its reason.',
    example: {
      ...SUMMARY,
      status: 'deactivated',
      rooms_left: ['!room:example'],
      rooms_left_by_op: [],
      rooms_not_left: [],
      devices_deleted: ['PHONE'],
      tokens_revoked: 1,
    },
    errors: [...USER_ID_ERRORS, MISSING_REASON, already('deactivated')],
  })
  @Post(':userId/deactivate')
  @HttpCode(200)
  deactivate(@Param('userId') userId: string, @Body() body: ReasonDto): Promise<DeactivationView> {
    return this.actions.deactivate(userId, body.reason);
  }

  /** POST /admin/v1/accounts/{userId}/takedown. */
  @AdminRoute({
    summary: 'Take an account down on this server: refuse logins, revoke tokens, stop syncing it; keep its data',
    description:
      'Unlike deactivation, nothing of the account’s replicated state changes (no room is left, no device deleted): ' +
      'its other homes keep serving it. This server refuses it and stops taking part in its sync, keeping every ' +
      'row for evidence. `reactivate` undoes it.',
    example: { ...SUMMARY, status: 'taken_down', tokens_revoked: 2 },
    errors: [...USER_ID_ERRORS, MISSING_REASON, already('taken_down')],
  })
  @Post(':userId/takedown')
  @HttpCode(200)
  takedown(@Param('userId') userId: string, @Body() body: ReasonDto): Promise<AccountSummary> {
    return this.actions.takedown(userId, body.reason);
  }

  /** POST /admin/v1/accounts/{userId}/reactivate. */
  @AdminRoute({
    summary: 'Serve a deactivated or taken-down account again',
    example: SUMMARY,
    errors: [...USER_ID_ERRORS, MISSING_REASON, already('active')],
  })
  @Post(':userId/reactivate')
  @HttpCode(200)
  reactivate(@Param('userId') userId: string, @Body() body: ReasonDto): Promise<AccountSummary> {
    return this.actions.reactivate(userId, body.reason);
  }

  /** POST /admin/v1/accounts/{userId}/password. */
  @AdminRoute({
    summary: 'Reset the password (its verifier replicates as `password.set`, so every home agrees)',
    example: { ...SUMMARY, tokens_revoked: 1 },
    errors: [
      ...USER_ID_ERRORS,
      MISSING_REASON,
      {
        errcode: 'M_INVALID_PARAM',
        when: 'a password shorter than 8 characters',
        error: 'password must be longer than or equal to 8 characters',
      },
    ],
  })
  @Post(':userId/password')
  @HttpCode(200)
  resetPassword(@Param('userId') userId: string, @Body() body: ResetPasswordDto): Promise<AccountSummary> {
    return this.actions.resetPassword(userId, body.password, body.logout_devices !== false, body.reason);
  }

  /** DELETE /admin/v1/accounts/{userId}/devices/{deviceId}. */
  @AdminRoute({
    summary: 'Delete a device of the account on every home (a replicated `device.delete`); body `{ reason }`',
    example: { device_id: 'PHONE' },
    errors: [
      ...USER_ID_ERRORS,
      MISSING_REASON,
      {
        errcode: 'M_NOT_FOUND',
        when: 'the account has no such device',
        error: `${EXAMPLE_USER_ID} has no device PHONE.`,
      },
    ],
  })
  @Delete(':userId/devices/:deviceId')
  @HttpCode(200)
  deleteDevice(
    @Param('userId') userId: string,
    @Param('deviceId') deviceId: string,
    @Body() body: ReasonDto,
  ): Promise<{ device_id: string }> {
    return this.actions.deleteDevice(userId, deviceId, body.reason);
  }
}
