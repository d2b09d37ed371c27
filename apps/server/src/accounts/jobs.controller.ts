import { Controller, Get, Param } from '@nestjs/common';
import { AdminApi, AdminRoute, EXAMPLE_PEER_ID, EXAMPLE_USER_ID } from '../admin/admin-api.decorator.js';
import { ResyncService, type JobView } from './resync.service.js';

/** A forced resync as the job routes answer it. */
export const EXAMPLE_JOB = {
  job_id: 'resync-0b6f1f0e-6c1d-4f8e-9d36-2f0e5c1a7b42',
  kind: 'account.resync',
  target: EXAMPLE_USER_ID,
  state: 'done',
  params: {
    user_id: EXAMPLE_USER_ID,
    account: EXAMPLE_USER_ID.slice(EXAMPLE_USER_ID.indexOf(':') + 1),
    peer_id: EXAMPLE_PEER_ID,
    home_name: 'laptop',
    home_role: 'client',
    reason: 'Devices added on the laptop do not show here (ticket 4212)',
  },
  progress: { phase: 'converged', ops_received: 12, ops_sent: 0, missing_here: 0, missing_there: 0 },
  error: null,
  created_at: '2026-12-02T01:10:00.000Z',
  started_at: '2026-12-02T01:10:00.040Z',
  finished_at: '2026-12-02T01:10:00.910Z',
} satisfies JobView;

/** Jobs an operator started (a forced resync), with their state and progress. */
@AdminApi('jobs')
@Controller('admin/v1/jobs')
export class JobsController {
  constructor(private readonly resyncs: ResyncService) {}

  /** GET /admin/v1/jobs/{id}. */
  @AdminRoute({
    summary: 'A job: its state (queued, running, done, failed), progress and, when it failed, what to do',
    description:
      '`progress.phase` is `queued`, `connecting`, `exchanging` or `converged`; `ops_received` and `ops_sent` ' +
      'count the ops taken in from the home and sent to it; `missing_here` and `missing_there` are what each side ' +
      'still lacks by the vectors known now. `error` says which home failed and what to check.',
    example: EXAMPLE_JOB,
    errors: [{ errcode: 'M_NOT_FOUND', when: 'no job has that id', error: 'No job resync-0b6f1f0e.' }],
  })
  @Get(':id')
  job(@Param('id') id: string): Promise<JobView> {
    return this.resyncs.job(id);
  }
}
