import { Body, Controller, Delete, HttpCode, Param, Post } from '@nestjs/common';
import {
  AdminApi,
  AdminRoute,
  EXAMPLE_PEER_ID,
  EXAMPLE_USER_ID,
  MISSING_REASON,
  USER_ID_ERRORS,
  type AdminErrorAnswer,
} from '../admin/admin-api.decorator.js';
import { ReasonDto, ResetPasswordDto, ResyncDto } from '../admin/admin-actions.dto.js';
import type { AccountSummary } from './accounts.service.js';
import { AccountAdminService, type DeactivationView } from './account-admin.service.js';
import { EXAMPLE_JOB } from './jobs.controller.js';
import { MigrateDto } from './migration.dto.js';
import { MigrationService } from './migration.service.js';
import { ResyncService, type JobView } from './resync.service.js';

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
  constructor(
    private readonly actions: AccountAdminService,
    private readonly resyncs: ResyncService,
    private readonly migrations: MigrationService,
  ) {}

  /** POST /admin/v1/accounts/{userId}/migrate. */
  @AdminRoute({
    summary: 'Move a hosted account to another provider’s server, as a job (GET /admin/v1/jobs/{id})',
    description:
      'Steps, each recorded before the next (`progress.step`): `enroll` (the new server is added to the account ' +
      'document and enrolled, with `token` when it asks for one), `catch_up` (it holds every op of the account ' +
      'and the latest events of its joined rooms held here), `handover` (this server stops serving the account, ' +
      'signs the document that revokes itself and hands it with the root key to the new server, resent until ' +
      'it answers), `finish` (the key is erased here and the account is `migrated`). A refusal before the key ' +
      'left ends the job `failed` and the account stays whole here. A job cut short by a restart goes on. Only ' +
      'an account whose key this server holds (custody `hosted`) can be moved by it. Users start the same with ' +
      'their password at POST /_polyhome/v1/migration. Written to the audit log with its reason.',
    status: 202,
    example: {
      ...EXAMPLE_JOB,
      job_id: 'migrate-7c1e0b52-0d7e-4f5e-8a0e-5b1f9d1c2a33',
      kind: 'account.migrate',
      state: 'running',
      params: {
        user_id: EXAMPLE_USER_ID,
        account: EXAMPLE_USER_ID.slice(EXAMPLE_USER_ID.indexOf(':') + 1),
        to: `/dns4/hs.new-provider.example/tcp/4001/p2p/${EXAMPLE_PEER_ID}`,
        to_peer: EXAMPLE_PEER_ID,
        to_name: 'server',
        reason: 'The user moves to another provider (ticket 4213)',
        started_by: 'admin',
      },
      progress: { step: 'catch_up', seq_before: 3, ops_missing_there: 0, rooms: 4, rooms_behind: 1 },
      finished_at: null,
    },
    errors: [
      ...USER_ID_ERRORS,
      MISSING_REASON,
      {
        errcode: 'M_FORBIDDEN',
        when: 'the user holds the account’s key',
        error: `${EXAMPLE_USER_ID} holds its own key: the user moves it with \`polyhome home add\` and \`polyhome home revoke\`.`,
      },
      {
        errcode: 'M_INVALID_PARAM',
        when: 'the account is not active here, or `to` is this server or a revoked home',
        error: `${EXAMPLE_USER_ID} is taken_down here: only an active account can move.`,
      },
    ],
  })
  @Post(':userId/migrate')
  @HttpCode(202)
  async migrate(@Param('userId') userId: string, @Body() body: MigrateDto): Promise<JobView> {
    const id = await this.migrations.start({
      userId,
      to: body.to,
      token: body.token,
      name: body.name,
      reason: body.reason,
      startedBy: 'admin',
    });
    return this.resyncs.job(id);
  }

  /** POST /admin/v1/accounts/{userId}/resync. */
  @AdminRoute({
    summary: 'Start a forced resync of the account with one of its homes, as a job (GET /admin/v1/jobs/{id})',
    description:
      'This server closes its sync session with that home, dials it, and runs a fresh session as on first ' +
      'contact: both ends exchange their version vectors and log digests from scratch and each sends what the ' +
      'other lacks. The job ends `done` once both hold the same ops (with the ops received and sent), or ' +
      '`failed` with a message naming the home and what to check (unreachable, or not converged within 120 s). ' +
      'It runs through the job queue (in-process or BullMQ). Written to the audit log with its reason.',
    status: 202,
    example: { ...EXAMPLE_JOB, state: 'queued', progress: { ...EXAMPLE_JOB.progress, phase: 'queued' } },
    errors: [
      ...USER_ID_ERRORS,
      MISSING_REASON,
      {
        errcode: 'M_INVALID_PARAM',
        when: 'the peer is not a home of the account, is a revoked one or is this server',
        error: `${EXAMPLE_PEER_ID} is not a home of ${EXAMPLE_USER_ID}. Name one of its homes (GET /admin/v1/accounts/{userId} lists them).`,
      },
      {
        errcode: 'M_INVALID_PARAM',
        when: 'the account is taken down here',
        error: `${EXAMPLE_USER_ID} is taken down here, so this server does not sync it: reactivate it first.`,
      },
    ],
  })
  @Post(':userId/resync')
  @HttpCode(202)
  resync(@Param('userId') userId: string, @Body() body: ResyncDto): Promise<JobView> {
    return this.resyncs.start(userId, body.home, body.reason);
  }

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
