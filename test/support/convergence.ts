// Reading what a server home holds straight from its database, and checking that homes agree.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openStorage, SqlReplicaStore, type Storage } from '@polyhome/storage';
import type { VersionVector } from '@polyhome/sync';
import { Redis } from 'ioredis';

/** Anything that can say what it holds of an account: a server's database or a client node. */
export interface Holder {
  name: string;
  versionVector(): Promise<VersionVector>;
  logDigests(): Promise<Record<string, string>>;
}

/** A read handle on a server database (no migrations: the server runs them). */
export async function openDatabase(
  databaseUrl: string,
  account: string,
  name: string,
): Promise<
  Holder & {
    store: SqlReplicaStore;
    close(): Promise<void>;
  }
> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-reader-'));
  let storage: Storage | undefined;
  const open = async (): Promise<SqlReplicaStore> => {
    storage ??= await openStorage({ databaseUrl, dataDir: scratch, migrationsRun: false, poolSize: 2 });
    return new SqlReplicaStore(storage.dataSource);
  };
  const store = await open();
  return {
    name,
    store,
    versionVector: () => store.versionVector(account),
    logDigests: () => store.logDigests(account),
    async close() {
      await storage?.close();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

/** Whether every holder has the same version vector and the same log digests (the same ops, so the same state). */
export async function converged(holders: Holder[]): Promise<boolean> {
  const seen = await Promise.all(
    holders.map(async (h) => JSON.stringify([sorted(await h.versionVector()), sorted(await h.logDigests())])),
  );
  return seen.every((s) => s === seen[0]);
}

/** What each holder has, for a failure message. */
export async function describeHolders(holders: Holder[]): Promise<string> {
  const lines = await Promise.all(
    holders.map(async (h) => `${h.name}: ${JSON.stringify(sorted(await h.versionVector().catch(() => ({}))))}`),
  );
  return lines.join('\n');
}

/** Whether `vv` covers `needed` (every origin at least as far). */
export function covers(vv: VersionVector, needed: VersionVector): boolean {
  return Object.entries(needed).every(([origin, seq]) => (vv[origin] ?? 0) >= seq);
}

function sorted<T>(record: Record<string, T>): Array<[string, T]> {
  return Object.entries(record).sort(([a], [b]) => a.localeCompare(b));
}

/** Deletes every Redis key under a prefix (a test's BullMQ queues on the shared Redis). */
export async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
