import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import {
  ADMIN_JOBS_QUEUE,
  MIGRATE_JOB_KIND,
  migrationProgressView,
  ResyncJobs,
  ResyncRefusal,
  type AdminJobData,
} from '@polyhome/home';
import { SqlReplicaStore, type AdminJobRecord, type SqlAdminStore } from '@polyhome/storage';
import type { Logger } from 'pino';
import { AuditService } from '../audit/audit.service.js';
import { ApiError } from '../common/api-error.js';
import { PINO_LOGGER } from '../logging/logger.js';
import { P2pService } from '../p2p/p2p.service.js';
import { QueueRegistry } from '../queue/queue-registry.js';
import { QueueService } from '../queue/queue.service.js';
import { InjectRepository } from '../storage/storage.module.js';
import { AccountsService } from './accounts.service.js';
import { MigrationService } from './migration.service.js';

/** A job as the admin API shows it (GET /admin/v1/jobs/{id}). */
export interface JobView {
  job_id: string;
  kind: string;
  target: string;
  state: string;
  params: Record<string, unknown>;
  progress: Record<string, unknown>;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** Jobs run at once per instance (each is mostly waiting on the network). */
const JOB_CONCURRENCY = 2;

/**
 * Forced resyncs of an account with one of its homes, as jobs on the `admin` queue (in-process or BullMQ):
 * the logic is libs/home's ResyncJobs; this wires it to the database, the queue, the Home and the audit log.
 */
@Injectable()
export class ResyncService implements OnApplicationBootstrap {
  private readonly jobs: ResyncJobs;

  constructor(
    private readonly accounts: AccountsService,
    private readonly audit: AuditService,
    private readonly p2p: P2pService,
    private readonly queue: QueueService,
    private readonly migrations: MigrationService,
    @Inject(QueueRegistry) registry: QueueRegistry,
    @InjectRepository('admin') private readonly admin: SqlAdminStore,
    store: SqlReplicaStore,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
  ) {
    registry.register(ADMIN_JOBS_QUEUE);
    this.jobs = new ResyncJobs({
      jobs: admin,
      queue: queue.backend.queue<AdminJobData>(ADMIN_JOBS_QUEUE),
      document: (account) => store.document(account),
      localPeer: p2p.peerId,
      resync: (account, peerId, options) => p2p.home.resync(account, peerId, options),
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.queue.backend.process<AdminJobData>(
      ADMIN_JOBS_QUEUE,
      async (job) => {
        // One queue for the admin jobs; each kind's runner leaves the others' jobs alone.
        await this.jobs.run(job.data.id, job.signal);
        await this.migrations.jobs.run(job.data.id, job.signal);
        const ended = await this.admin.job(job.data.id);
        this.logger.info(
          { jobId: job.data.id, state: ended?.state, progress: ended?.progress, error: ended?.error },
          'admin job ended',
        );
      },
      { concurrency: JOB_CONCURRENCY },
    );
    const lost = await this.jobs.recover();
    if (lost > 0) this.logger.warn({ jobs: lost }, 'admin jobs left unfinished by the last run were ended as failed');
    const resumed = await this.migrations.jobs.recover();
    if (resumed > 0) this.logger.warn({ jobs: resumed }, 'migrations left unfinished by the last run go on');
  }

  /** Checks and queues a resync of the account with one of its homes; audited with its reason. */
  async start(userId: string, peerId: string, reason: string): Promise<JobView> {
    const row = await this.accounts.rowByUserId(userId);
    if (row.status === 'taken_down') {
      throw new ApiError(
        'M_INVALID_PARAM',
        `${userId} is taken down here, so this server does not sync it: reactivate it first.`,
      );
    }
    let id: string;
    try {
      id = await this.jobs.start({ userId: row.userId, account: row.serverName, peerId, reason });
    } catch (error) {
      if (error instanceof ResyncRefusal) {
        throw new ApiError(error.kind === 'not_found' ? 'M_NOT_FOUND' : 'M_INVALID_PARAM', error.message);
      }
      throw error;
    }
    await this.audit.record({
      action: 'account.resync',
      target: row.userId,
      reason,
      detail: { job_id: id, peer_id: peerId },
    });
    return this.job(id);
  }

  /** A migration job by its id (the user's view); M_NOT_FOUND when there is none or it is another kind. */
  async migrationJob(id: string): Promise<JobView> {
    const view = await this.job(id);
    if (view.kind !== MIGRATE_JOB_KIND) throw new ApiError('M_NOT_FOUND', `No job ${id.slice(0, 80)}.`);
    return view;
  }

  /** A job by its id; M_NOT_FOUND when there is none. */
  async job(id: string): Promise<JobView> {
    const job = /^[A-Za-z0-9._-]{1,64}$/.test(id) ? await this.admin.job(id) : undefined;
    if (job === undefined) throw new ApiError('M_NOT_FOUND', `No job ${id.slice(0, 80)}.`);
    return viewOf(job);
  }
}

function viewOf(job: AdminJobRecord): JobView {
  // A migration's enrollment token is a secret of the new provider: never shown.
  const { token, ...params } = job.params;
  return {
    job_id: job.id,
    kind: job.kind,
    target: job.target,
    state: job.state,
    params: token === undefined ? params : { ...params, token: '(given)' },
    progress: job.kind === MIGRATE_JOB_KIND ? migrationProgressView(job.progress) : job.progress,
    error: job.error,
    created_at: job.createdAt.toISOString(),
    started_at: job.startedAt?.toISOString() ?? null,
    finished_at: job.finishedAt?.toISOString() ?? null,
  };
}
