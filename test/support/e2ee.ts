// Helpers of the end-to-end encryption process tests: server processes on either backend, retrying a step
// that waits on the network, a client's decrypted view of a room, and confirming an SAS.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import type { MatrixClient, MatrixEvent } from 'matrix-js-sdk';
import type { Logger } from 'matrix-js-sdk/lib/logger.js';
import { VerifierEvent, type ShowSasCallbacks, type Verifier } from 'matrix-js-sdk/lib/crypto-api/index.js';
import { deleteRedisPrefix } from './convergence.js';
import { ServerProcess } from './server-process.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

export interface Hosted {
  server: ServerProcess;
  dispose(): Promise<void>;
}

/** A server process: on PostgreSQL + BullMQ with `postgres`, else on the embedded default. */
export async function serverProcess(
  label: string,
  postgres: boolean,
  env: Record<string, string> = {},
): Promise<Hosted> {
  const prefix = `e2ee-${label}-${process.pid}-${Date.now()}`;
  const scratch = await mkdtemp(path.join(os.tmpdir(), `polyhome-${label}-`));
  const database = postgres ? await createTestPostgresDatabase() : undefined;
  const server = await ServerProcess.create({
    name: label,
    dataDir: scratch,
    env: database === undefined ? env : { DATABASE_URL: database.url, REDIS_URL, QUEUE_PREFIX: prefix, ...env },
  });
  await server.start();
  return {
    server,
    async dispose() {
      await server.kill('SIGKILL');
      await database?.drop().catch(() => undefined);
      if (database !== undefined) await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

/** Retries `step` until it resolves (a document still travelling through the DHT, a join not yet possible). */
export async function eventually(step: () => Promise<unknown>, what: string, timeoutMs: number): Promise<void> {
  let last = '';
  await waitFor(
    async () => {
      try {
        await step();
        return true;
      } catch (err) {
        last = (err as Error).message;
        return false;
      }
    },
    what,
    timeoutMs,
    1_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last error: ${last})`);
  });
}

/** The room's message events a client holds, decrypted where it can: their bodies, and how many failed. */
export async function decryptedBodies(
  client: MatrixClient,
  roomId: string,
): Promise<{ bodies: string[]; failed: number }> {
  const events: MatrixEvent[] = client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [];
  const bodies: string[] = [];
  let failed = 0;
  for (const event of events) {
    if (event.getWireType() !== 'm.room.encrypted' && event.getType() !== 'm.room.message') continue;
    await client.decryptEventIfNeeded(event);
    if (event.isDecryptionFailure()) failed += 1;
    else if (event.getType() === 'm.room.message') bodies.push(String(event.getContent()['body']));
  }
  return { bodies, failed };
}

/** Confirms a verifier's SAS and resolves with its emoji names once the verification is done. */
export async function confirmSas(verifier: Verifier): Promise<string[]> {
  const shown = new Promise<ShowSasCallbacks>((resolve) => verifier.once(VerifierEvent.ShowSas, resolve));
  const verified = verifier.verify();
  const sas = verifier.getShowSasCallbacks() ?? (await shown);
  const emoji = (sas.sas.emoji ?? []).map(([, name]) => name);
  await sas.confirm();
  await verified;
  return emoji;
}

/** What a client's start-up and run must never show: an answer of 500 or more, or the SDK giving up on a queue. */
export interface ClientWatch {
  /** `METHOD path status` of every answer at or above 500. */
  broken: string[];
  /** SDK log lines saying it dropped a queue or stopped retrying. */
  gaveUp: string[];
  /** SDK log lines seen in all (the logger is the SDK's: a watch that saw none watched nothing). */
  lines: number;
  /** Options for `createClient`: a fetch that records the answers, and a logger that records the lines. */
  options(): { fetchFn: typeof fetch; logger: Logger };
}

/** SDK log lines that mean a client lost work: its to-device queue dropped, or retries given up. */
const GAVE_UP = /dropping|retry limit reached|giving up|will not retry/i;

/** Watches clients' HTTP answers and SDK logs (matrix-js-sdk's logger, forwarded to the console). */
export function watchClients(): ClientWatch {
  const watch: ClientWatch = {
    broken: [],
    gaveUp: [],
    lines: 0,
    options: () => ({ fetchFn, logger: logger('') }),
  };
  const fetchFn: typeof fetch = async (input, init) => {
    const answer = await fetch(input, init);
    if (answer.status >= 500) {
      const url = new URL(input instanceof Request ? input.url : String(input));
      watch.broken.push(`${init?.method ?? 'GET'} ${url.pathname} ${answer.status}`);
    }
    return answer;
  };
  const logger = (prefix: string): Logger => {
    const line =
      (level: 'trace' | 'debug' | 'info' | 'warn' | 'error') =>
      (...args: unknown[]): void => {
        watch.lines += 1;
        const text = args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
        if (GAVE_UP.test(text)) watch.gaveUp.push(`${prefix}${text}`);
        if (level === 'warn' || level === 'error') console[level](prefix, ...args);
      };
    return {
      trace: line('trace'),
      debug: line('debug'),
      info: line('info'),
      warn: line('warn'),
      error: line('error'),
      getChild: (namespace: string) => logger(`${prefix}${namespace} `),
    };
  };
  return watch;
}
