// A forced resync of an account with one of its homes, as a job an operator starts and watches: checked at
// once (the account is held here, the peer is a current home of it), recorded with its state and progress in
// the job store, run through the queue port (in-process or BullMQ alike) by `run`, which drives
// SyncService.resync under a time bound and writes what it did. No NestJS, no storage: the caller gives ports.
import { randomUUID } from 'node:crypto';
import { homeStatus, type AccountDocument, type Home } from '@polyhome/identity';
import {
  HomeUnreachableError,
  ResyncRefusedError,
  ResyncTimeoutError,
  type ResyncOptions,
  type ResyncProgress,
} from '@polyhome/p2p';
import type { Queue } from '@polyhome/queue';

/** The queue admin jobs go through (the job carries only the id; the job store holds the rest). */
export const ADMIN_JOBS_QUEUE = 'admin';
/** The kind of a forced-resync job, in the job store and the audit log. */
export const RESYNC_JOB_KIND = 'account.resync';
/** How long a resync may take, dialling included, before it ends as failed (ms). */
export const RESYNC_TIMEOUT_MS = 120_000;
/** Progress is written to the job store at most this often (ms); the last one always. */
const PROGRESS_WRITE_INTERVAL_MS = 500;

/** The error of a job whose run was cut short by a stop of the server that ran it. */
const INTERRUPTED = 'The server running this job stopped before it ended. Start the resync again.';

/** Where a job is: waiting in the queue, running, or ended. */
export type JobState = 'queued' | 'running' | 'done' | 'failed';

/** What ResyncJobs reads of a stored job (`SqlAdminStore` of `@polyhome/storage` stores more). */
export interface JobRecord {
  id: string;
  kind: string;
  state: string;
  params: Record<string, unknown>;
}

/** What may change of a stored job. */
export interface JobChange {
  state?: string;
  progress?: Record<string, unknown>;
  error?: string | null;
  startedAt?: Date | null;
  finishedAt?: Date | null;
}

/** The job store: `SqlAdminStore` of `@polyhome/storage` fits it. */
export interface JobStore {
  createJob(job: JobRecord & { target: string; progress: Record<string, unknown> }): Promise<void>;
  updateJob(id: string, change: JobChange): Promise<boolean>;
  job(id: string): Promise<JobRecord | undefined>;
  unfinishedJobs(limit: number): Promise<Array<{ id: string }>>;
}

/** What a resync job was asked to do. */
export interface ResyncParams {
  user_id: string;
  /** The account's server name. */
  account: string;
  peer_id: string;
  home_name: string;
  home_role: string;
  reason: string;
}

/** The job data on the queue. */
export interface AdminJobData {
  id: string;
}

/** What ResyncJobs needs of the home. */
export interface ResyncJobsPorts {
  jobs: JobStore;
  queue: Queue<AdminJobData>;
  /** The account document in force here, or undefined when the account is not held. */
  document(account: string): Promise<AccountDocument | undefined>;
  /** This home's PeerId. */
  localPeer: string;
  /** SyncService.resync (through the Home). */
  resync(account: string, peerId: string, options: ResyncOptions): Promise<ResyncProgress>;
  /** Bound of one run (default RESYNC_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** Why a resync cannot start: `not_found` (the account is not held here) or `invalid` (the peer). */
export class ResyncRefusal extends Error {
  constructor(
    readonly kind: 'not_found' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'ResyncRefusal';
  }
}

/** Forced resyncs as jobs: start (checked, recorded, queued), run (the queue's handler), recover. */
export class ResyncJobs {
  constructor(private readonly ports: ResyncJobsPorts) {}

  /**
   * The home entry a resync of `account` with `peerId` would use; throws ResyncRefusal when the account is not
   * held here, or the peer is this home, not a home of it, or a revoked one. Changes nothing.
   */
  async check(userId: string, account: string, peerId: string): Promise<Home> {
    const document = await this.ports.document(account);
    if (document === undefined) throw new ResyncRefusal('not_found', `${userId} is not hosted here.`);
    if (peerId === this.ports.localPeer) {
      throw new ResyncRefusal('invalid', `${peerId} is this server: name another home of ${userId} to resync with.`);
    }
    const status = homeStatus(document, peerId);
    const home = document.homes.find((h) => h.peer_id === peerId);
    if (status.kind === 'revoked') {
      throw new ResyncRefusal(
        'invalid',
        `${peerId} is a revoked home of ${userId}: a revoked home is sent no ops. Name a current home ` +
          '(GET /admin/v1/accounts/{userId} lists them).',
      );
    }
    if (status.kind !== 'home' || home === undefined) {
      throw new ResyncRefusal(
        'invalid',
        `${peerId} is not a home of ${userId}. Name one of its homes (GET /admin/v1/accounts/{userId} lists them).`,
      );
    }
    return home;
  }

  /** Checks, records the job as queued and adds it to the queue; its id. */
  async start(request: { userId: string; account: string; peerId: string; reason: string }): Promise<string> {
    const home = await this.check(request.userId, request.account, request.peerId);
    const id = `resync-${randomUUID()}`;
    const params: ResyncParams = {
      user_id: request.userId,
      account: request.account,
      peer_id: home.peer_id,
      home_name: home.name,
      home_role: home.role,
      reason: request.reason,
    };
    await this.ports.jobs.createJob({
      id,
      kind: RESYNC_JOB_KIND,
      target: request.userId,
      state: 'queued',
      params: { ...params },
      progress: progressView(undefined),
    });
    try {
      await this.ports.queue.add('resync', { id }, { jobId: id, attempts: 1, removeOnComplete: true });
    } catch (error: unknown) {
      await this.ports.jobs.updateJob(id, {
        state: 'failed',
        finishedAt: new Date(),
        error: `The job could not be queued (${errorText(error)}). Check the queue (GET /health), then start it again.`,
      });
      throw error;
    }
    return id;
  }

  /**
   * Runs one job (the handler of ADMIN_JOBS_QUEUE): marks it running, drives the resync under the time bound
   * (and `signal`, the queue's abort at shutdown), writes its progress, and ends it as done or failed with a
   * message saying what to check. Never throws for a failed resync (the job store says it). A job found
   * running (its first run was cut short, and the queue runs it again) ends as failed; one that ended is left.
   */
  async run(id: string, signal?: AbortSignal): Promise<void> {
    const job = await this.ports.jobs.job(id);
    if (job === undefined || job.kind !== RESYNC_JOB_KIND) return;
    if (job.state === 'running') {
      // BullMQ hands a job whose worker died mid-run to another worker: that run was lost, say so.
      await this.ports.jobs.updateJob(id, { state: 'failed', finishedAt: new Date(), error: INTERRUPTED });
      return;
    }
    if (job.state !== 'queued') return;
    const params = job.params as unknown as ResyncParams;
    const timeoutMs = this.ports.timeoutMs ?? RESYNC_TIMEOUT_MS;
    await this.ports.jobs.updateJob(id, { state: 'running', startedAt: new Date() });
    let latest: ResyncProgress | undefined;
    let written = 0;
    let writing: Promise<unknown> = Promise.resolve();
    const write = (progress: ResyncProgress): void => {
      latest = progress;
      const now = Date.now();
      if (now - written < PROGRESS_WRITE_INTERVAL_MS) return;
      written = now;
      writing = writing.then(() => this.ports.jobs.updateJob(id, { progress: progressView(progress) })).catch(() => {});
    };
    const bound = AbortSignal.timeout(timeoutMs);
    try {
      const result = await this.ports.resync(params.account, params.peer_id, {
        signal: signal === undefined ? bound : AbortSignal.any([bound, signal]),
        onProgress: write,
      });
      await writing;
      await this.ports.jobs.updateJob(id, { state: 'done', finishedAt: new Date(), progress: progressView(result) });
    } catch (error: unknown) {
      await writing;
      await this.ports.jobs.updateJob(id, {
        state: 'failed',
        finishedAt: new Date(),
        progress: progressView(latest),
        error: failureText(params, error, timeoutMs, signal?.aborted === true),
      });
    }
  }

  /**
   * Ends as failed the jobs left queued or running whose queue job is gone (the in-process queue keeps no job
   * across a restart; BullMQ keeps them, and they run again). Call at start, after the processor is registered.
   */
  async recover(): Promise<number> {
    let ended = 0;
    for (const job of await this.ports.jobs.unfinishedJobs(1_000)) {
      // Other kinds of admin job (migrations) recover their own way.
      if ((await this.ports.jobs.job(job.id))?.kind !== RESYNC_JOB_KIND) continue;
      if ((await this.ports.queue.getState(job.id)) !== undefined) continue;
      await this.ports.jobs.updateJob(job.id, {
        state: 'failed',
        finishedAt: new Date(),
        error: INTERRUPTED,
      });
      ended++;
    }
    return ended;
  }
}

/** A job's progress as stored and answered (snake_case, counts 0 before the run). */
export function progressView(progress: ResyncProgress | undefined): Record<string, unknown> {
  return {
    phase: progress?.phase ?? 'queued',
    ops_received: progress?.opsReceived ?? 0,
    ops_sent: progress?.opsSent ?? 0,
    missing_here: progress?.missingHere ?? 0,
    missing_there: progress?.missingThere ?? 0,
  };
}

// What a failed resync says: which home, what happened, what to check.
function failureText(params: ResyncParams, error: unknown, timeoutMs: number, stopped: boolean): string {
  const home = `home "${params.home_name}" (${params.peer_id}, a ${params.home_role} home)`;
  if (error instanceof HomeUnreachableError) {
    const where =
      params.home_role === 'client'
        ? 'that the device running it is online and its polyhome node is started (a client home is reached ' +
          'directly or through a relay of the account’s server homes)'
        : 'that its server is running and reachable at the addresses in the account document';
    return `Could not reach ${home}: ${error.message}. Check ${where}, then start the resync again.`;
  }
  if (stopped) return `This server stopped while the resync with ${home} ran. Start the resync again.`;
  if (error instanceof ResyncTimeoutError) {
    return (
      `The resync with ${home} did not end within ${Math.round(timeoutMs / 1000)} s: ${error.message}. ` +
      'Check that the home is still connected (GET /admin/v1/peers) and its log for refused ops, then start the ' +
      'resync again.'
    );
  }
  if (error instanceof ResyncRefusedError) {
    return `The resync with ${home} was refused: ${error.message} (the account changed since the job was started).`;
  }
  return `The resync with ${home} failed: ${errorText(error)}. Check this server's log, then start it again.`;
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 500);
}
