import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

/** The Redis the tests use: `TEST_REDIS_URL`, else the local one that `npm run services` starts. */
export const TEST_REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

function probeClient(url: string): Redis {
  // Fail fast: no reconnect loop, no offline queue, so an absent Redis is an error at once.
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  return client;
}

/** Throws, with the fix in the message, when Redis at `url` does not answer a PING. */
export async function requireRedis(url: string = TEST_REDIS_URL): Promise<void> {
  const client = probeClient(url);
  // connect() rejects with a generic "Connection is closed"; the socket error says why.
  let socketError: Error | undefined;
  client.on('error', (err: Error) => {
    socketError = err;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    const reason = (socketError ?? (err instanceof Error ? err : new Error(String(err)))).message;
    throw new Error(
      `Redis is not reachable at ${url} (${reason}): start Redis (npm run services) or set TEST_REDIS_URL`,
      { cause: err },
    );
  } finally {
    client.disconnect();
  }
}

/** A key prefix no other test file or run shares, so parallel suites never see each other's jobs. */
export function uniquePrefix(label: string): string {
  return `test-queue-${label}-${randomUUID().slice(0, 8)}`;
}

/** Deletes every key under `prefix` and resolves to how many there were. */
export async function deleteKeys(url: string, prefix: string): Promise<number> {
  const client = probeClient(url);
  try {
    await client.connect();
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) {
        deleted += await client.unlink(...keys);
      }
    } while (cursor !== '0');
    return deleted;
  } finally {
    client.disconnect();
  }
}

/** Counts the keys under `prefix` (tests use it to prove their cleanup). */
export async function countKeys(url: string, prefix: string): Promise<number> {
  const client = probeClient(url);
  try {
    await client.connect();
    let count = 0;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      count += keys.length;
    } while (cursor !== '0');
    return count;
  } finally {
    client.disconnect();
  }
}
