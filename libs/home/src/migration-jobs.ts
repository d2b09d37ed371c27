// Migration of an account from this provider (server home A) to another (server home B), as a job the user or an
// operator starts and both watch. Four steps, each recorded in the job store before the next begins, so a run cut
// short (A killed) resumes where it stopped once A is back:
//   1. enroll   - B is added to the account's document (signed here, with the key A holds) and enrolled.
//   2. catch_up - B holds every op of the account held here (a resync converges) and every latest event of
//                 the account's joined rooms held here (`/event` on B answers 200).
//   3. handover - A stops serving the account (frozen), signs the document that revokes A itself (not put in
//                 force), records it, then hands it with the root key to B (/polyhome/custody/1.0.0). Until B
//                 answers, the same document is sent again (never another of that seq: no equivocation).
//   4. finish   - A puts that document in force, erases its sealed key and stops hosting the account.
// Until B has taken the key, the account stays whole on A: a refusal in steps 1 to 3 ends the job as failed and A
// serves the account as before (B, if enrolled, stays a home of it, as after an ordinary "add a home").
// No NestJS, no storage: the caller gives ports (the server wires its database, queue and sealed keys).
import { randomUUID } from 'node:crypto';
import { homeStatus, type AccountDocument } from '@polyhome/identity';
import type { ResyncOptions, ResyncProgress } from '@polyhome/p2p';
import type { Queue } from '@polyhome/queue';
import type { AdminJobData, JobStore } from './resync-jobs.js';

/** The kind of a migration job, in the job store and the audit log. */
export const MIGRATE_JOB_KIND = 'account.migrate';

/** The steps of a migration, in order. */
export type MigrationStep = 'enroll' | 'catch_up' | 'handover' | 'finish';

/** Points between steps where the job's state is durable (the tests kill the process at each). */
export type MigrationPoint = 'enrolled' | 'caught_up' | 'signed' | 'handed_over' | 'finished';

/** How long catching up may take before the job ends as failed (the account stays on this home). */
export const MIGRATION_CATCH_UP_TIMEOUT_MS = 15 * 60_000;
/** Time allowed to each resync of the catch-up. */
const RESYNC_ROUND_MS = 60_000;
/** Pause between catch-up rounds while the new home is behind. */
const CATCH_UP_PAUSE_MS = 2_000;
/** Retries of the handover: 1 s doubling to this, until the new home answers. */
const HANDOVER_MAX_BACKOFF_MS = 60_000;

/** What a migration job was asked to do (no secret: the enrollment token is kept apart, see MigrationRequest). */
export interface MigrationParams {
  user_id: string;
  /** The account's server name. */
  account: string;
  /** The new server home: its multiaddr with /p2p/<PeerId>, and that PeerId. */
  to: string;
  to_peer: string;
  /** Its name in the account document. */
  to_name: string;
  reason: string;
  /** `user` (with the account's password) or `admin`. */
  started_by: 'user' | 'admin';
}

/** A request to migrate: the params, and the new provider's enrollment token when it asks for one. */
export interface MigrationRequest extends Omit<MigrationParams, 'to_peer'> {
  token?: string | undefined;
}

/** A refusal of the new home that ends the migration (it stored nothing): its errcode and reason. */
export class MigrationRefusal extends Error {
  constructor(
    readonly kind: 'not_found' | 'invalid' | 'refused',
    message: string,
  ) {
    super(message);
    this.name = 'MigrationRefusal';
  }
}

/** What MigrationJobs needs of the home and the server. */
export interface MigrationPorts {
  jobs: JobStore;
  queue: Queue<AdminJobData>;
  /** This home's PeerId. */
  localPeer: string;
  /** The account document in force here, or undefined when the account is not held. */
  document(account: string): Promise<AccountDocument | undefined>;
  /** The PeerId in a multiaddr; throws MigrationRefusal('invalid') for a bad one. */
  peerOf(multiaddr: string): string;
  /** Adds the new home to the document and enrolls it (with `token`); throws MigrationRefusal when refused. */
  enroll(params: MigrationParams, token: string | undefined): Promise<void>;
  /** SyncService.resync (through the Home). */
  resync(account: string, peerId: string, options: ResyncOptions): Promise<ResyncProgress>;
  /** Home.roomsBehind. */
  roomsBehind(account: string, peerId: string): Promise<{ rooms: number; behind: string[] }>;
  /** Stops serving the account's clients here (no login, no token) before the departure is signed. */
  freeze(account: string): Promise<void>;
  /** Serves them again (the handover was refused). */
  thaw(account: string): Promise<void>;
  /** Signs the document revoking this home (Home.departureDocument with the key held here). */
  signDeparture(account: string): Promise<AccountDocument>;
  /**
   * Hands `document` with the root key to the new home; resolves with the seq it holds in force. Throws
   * MigrationRefusal('refused') when it refused (it stored nothing); any other error is retried.
   */
  handOver(params: MigrationParams, document: AccountDocument): Promise<number>;
  /** Puts the departure in force here, erases the key, stops hosting; idempotent. */
  finish(params: MigrationParams, document: AccountDocument): Promise<void>;
  /** Called at each durable point (tests kill the process there); `resumed` on a run that goes on after a stop. */
  atPoint?: (point: MigrationPoint, params: MigrationParams, resumed: boolean) => void;
  catchUpTimeoutMs?: number;
}

interface Progress {
  step: MigrationStep | 'queued' | 'done';
  ops_missing_there?: number;
  rooms?: number;
  rooms_behind?: number;
  handover_attempts?: number;
  last_error?: string;
  /** The signed departure, recorded before it is first sent. */
  document?: AccountDocument;
  seq_before?: number;
  seq_after?: number;
}

/** Migrations as jobs: start (checked, recorded, queued), run (the queue's handler, resumable), recover. */
export class MigrationJobs {
  constructor(private readonly ports: MigrationPorts) {}

  /** Checks, records the job as queued and adds it to the queue; its id. Throws MigrationRefusal. */
  async start(request: MigrationRequest): Promise<string> {
    const document = await this.ports.document(request.account);
    if (document === undefined || homeStatus(document, this.ports.localPeer).kind !== 'home') {
      throw new MigrationRefusal('not_found', `${request.user_id} is not hosted here.`);
    }
    const peer = this.ports.peerOf(request.to);
    if (peer === this.ports.localPeer) {
      throw new MigrationRefusal('invalid', `${request.to} is this server: name the new provider's server.`);
    }
    if (homeStatus(document, peer).kind === 'revoked') {
      throw new MigrationRefusal(
        'invalid',
        `${peer} is a revoked home of ${request.user_id}: it cannot be added again.`,
      );
    }
    const id = `migrate-${randomUUID()}`;
    const params: MigrationParams = {
      user_id: request.user_id,
      account: request.account,
      to: request.to,
      to_peer: peer,
      to_name: request.to_name,
      reason: request.reason,
      started_by: request.started_by,
    };
    const progress: Progress = { step: 'queued', seq_before: document.seq };
    await this.ports.jobs.createJob({
      id,
      kind: MIGRATE_JOB_KIND,
      target: request.user_id,
      state: 'queued',
      params: request.token === undefined ? { ...params } : { ...params, token: request.token },
      progress: { ...progress },
    });
    await this.#queue(id);
    return id;
  }

  /**
   * Runs one job (the handler of the admin queue) from the step it reached; a job found running was cut short
   * and goes on. Never throws for a failed migration (the job store says why and what to do).
   */
  async run(id: string, signal?: AbortSignal): Promise<void> {
    const job = await this.ports.jobs.job(id);
    if (job === undefined || job.kind !== MIGRATE_JOB_KIND) return;
    if (job.state !== 'queued' && job.state !== 'running') return;
    const params = job.params as unknown as MigrationParams & { token?: string };
    const progress = { ...(job as unknown as { progress?: Progress }).progress } as Progress;
    if (progress.step === 'queued' || progress.step === undefined) progress.step = 'enroll';
    await this.ports.jobs.updateJob(id, {
      state: 'running',
      ...(job.state === 'queued' ? { startedAt: new Date() } : {}),
    });
    const save = (): Promise<boolean> => this.ports.jobs.updateJob(id, { progress: { ...progress } });
    const resumed = job.state === 'running';
    const point = (p: MigrationPoint): void => this.ports.atPoint?.(p, params, resumed);
    try {
      if (progress.step === 'enroll') {
        await this.#enroll(params, params.token);
        progress.step = 'catch_up';
        await save();
        point('enrolled');
      }
      if (progress.step === 'catch_up') {
        await this.#catchUp(params, progress, save, signal);
        progress.step = 'handover';
        await save();
        point('caught_up');
      }
      if (progress.step === 'handover') {
        if (progress.document === undefined) {
          await this.ports.freeze(params.account);
          progress.document = await this.ports.signDeparture(params.account);
          await save();
        }
        point('signed');
        // Unreachable, or no answer: the new home may or may not hold the document. Only the same one is ever sent
        // again, until it answers (a different document of that seq would be an equivocation).
        progress.seq_after = await this.#untilDone(
          () => {
            progress.handover_attempts = (progress.handover_attempts ?? 0) + 1;
            return this.ports.handOver(params, progress.document!);
          },
          progress,
          save,
          signal,
        );
        progress.step = 'finish';
        await save();
        point('handed_over');
      }
      if (progress.step === 'finish') {
        // The new home holds the key: from here the migration only goes forward (a store error is retried).
        await this.#untilDone(() => this.ports.finish(params, progress.document!), progress, save, signal);
        point('finished');
      }
      progress.step = 'done';
      delete progress.last_error;
      await this.ports.jobs.updateJob(id, { state: 'done', finishedAt: new Date(), progress: { ...progress } });
    } catch (error: unknown) {
      if (signal?.aborted === true && !(error instanceof MigrationRefusal)) {
        // This server is stopping: the job stays running and goes on from its step after the restart.
        return;
      }
      // A refusal before the key left this home: the account stays whole here.
      if (progress.step === 'handover') await this.ports.thaw(params.account).catch(() => {});
      await this.ports.jobs.updateJob(id, {
        state: 'failed',
        finishedAt: new Date(),
        progress: { ...progress },
        error: failureText(params, progress.step, error),
      });
    }
  }

  /**
   * Queues again the migrations left queued or running whose queue job is gone (the in-process queue keeps no
   * job across a restart; BullMQ keeps them): a migration goes on after a restart. Call at start.
   */
  async recover(): Promise<number> {
    let resumed = 0;
    for (const { id } of await this.ports.jobs.unfinishedJobs(1_000)) {
      const job = await this.ports.jobs.job(id);
      if (job?.kind !== MIGRATE_JOB_KIND) continue;
      if ((await this.ports.queue.getState(id)) !== undefined) continue;
      await this.#queue(id);
      resumed++;
    }
    return resumed;
  }

  async #queue(id: string): Promise<void> {
    await this.ports.queue.add('migrate', { id }, { jobId: id, attempts: 1, removeOnComplete: true });
  }

  async #enroll(params: MigrationParams, token: string | undefined): Promise<void> {
    const document = await this.ports.document(params.account);
    if (document === undefined) throw new MigrationRefusal('not_found', `${params.user_id} is no longer held here.`);
    const status = homeStatus(document, params.to_peer).kind;
    if (status === 'revoked') {
      throw new MigrationRefusal('invalid', `${params.to_peer} was revoked from ${params.user_id} meanwhile.`);
    }
    if (status !== 'home') await this.ports.enroll(params, token);
  }

  async #catchUp(
    params: MigrationParams,
    progress: Progress,
    save: () => Promise<boolean>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const deadline = Date.now() + (this.ports.catchUpTimeoutMs ?? MIGRATION_CATCH_UP_TIMEOUT_MS);
    for (;;) {
      signal?.throwIfAborted();
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new Error(
          `the new home did not catch up within ${Math.round((this.ports.catchUpTimeoutMs ?? MIGRATION_CATCH_UP_TIMEOUT_MS) / 1000)} s ` +
            `(${progress.ops_missing_there ?? '?'} ops, ${progress.rooms_behind ?? '?'} rooms behind; last: ${progress.last_error ?? 'none'})`,
        );
      }
      const bound = AbortSignal.timeout(Math.min(remaining, RESYNC_ROUND_MS));
      try {
        const synced = await this.ports.resync(params.account, params.to_peer, {
          signal: signal === undefined ? bound : AbortSignal.any([bound, signal]),
        });
        progress.ops_missing_there = synced.missingThere;
        const rooms = await this.ports.roomsBehind(params.account, params.to_peer);
        progress.rooms = rooms.rooms;
        progress.rooms_behind = rooms.behind.length;
        delete progress.last_error;
        await save();
        if (synced.phase === 'converged' && rooms.behind.length === 0) return;
      } catch (error: unknown) {
        progress.last_error = errorText(error);
        await save();
      }
      await sleep(CATCH_UP_PAUSE_MS, signal);
    }
  }

  /**
   * Runs `attempt` until it succeeds, 1 s doubling to 60 s between tries, each failure written to the job's
   * progress; a MigrationRefusal (a verdict, not a fault) ends it at once. Used where the migration can only go
   * forward: the handover of the one signed document, and the finish once the new home took the key.
   */
  async #untilDone<T>(
    attempt: () => Promise<T>,
    progress: Progress,
    save: () => Promise<boolean>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    let backoff = 1_000;
    for (;;) {
      signal?.throwIfAborted();
      try {
        return await attempt();
      } catch (error: unknown) {
        if (error instanceof MigrationRefusal) throw error;
        progress.last_error = errorText(error);
        await save().catch(() => false);
      }
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, HANDOVER_MAX_BACKOFF_MS);
    }
  }
}

/** A job's progress as answered: the step and counts, and the departure's seq rather than the document. */
export function migrationProgressView(progress: Record<string, unknown>): Record<string, unknown> {
  const { document, ...rest } = progress as Progress & Record<string, unknown>;
  return document === undefined ? rest : { ...rest, departure_seq: document.seq };
}

function failureText(params: MigrationParams, step: string, error: unknown): string {
  const to = `the new server home ${params.to_peer}`;
  const stays = `${params.user_id} stays whole on this server; start the migration again once that is fixed.`;
  if (error instanceof MigrationRefusal) return `Step ${step}: ${error.message} ${stays}`;
  if (step === 'catch_up') {
    return `Step catch_up: ${to} did not catch up: ${errorText(error)}. Check that it is running and reachable (GET /admin/v1/peers). ${stays}`;
  }
  return `Step ${step} failed: ${errorText(error)}. Check this server's log. ${stays}`;
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 500);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
