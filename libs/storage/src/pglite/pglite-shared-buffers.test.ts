// A short command opens the embedded database with a small shared_buffers (issue 14, `polyhome init`): the setting
// holds for that open only, the data directory keeps its own for the next, and a malformed size opens nothing.
import { readdir } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { openStorage } from '../data-source.js';
import { createTestDatabase, type TestDatabase } from '../testing/backends.js';

async function sharedBuffers(dataDir: string, size?: string): Promise<string> {
  const storage = await openStorage({ dataDir, ...(size === undefined ? {} : { embeddedSharedBuffers: size }) });
  try {
    const rows = (await storage.dataSource.query('SHOW shared_buffers')) as Array<{ shared_buffers: string }>;
    return rows[0]!.shared_buffers;
  } finally {
    await storage.close();
  }
}

describe('embedded shared_buffers', () => {
  const places: TestDatabase[] = [];
  afterAll(async () => {
    for (const place of places) await place.dispose();
  });

  it('applies to the open that asks for it, not to the next', async () => {
    const place = await createTestDatabase('pglite');
    places.push(place);
    expect(await sharedBuffers(place.dataDir, '16MB')).toBe('16MB');
    expect(await sharedBuffers(place.dataDir)).toBe('128MB');
  });

  it('refuses a malformed size before anything is written', async () => {
    const place = await createTestDatabase('pglite');
    places.push(place);
    for (const size of ['16', '0MB', '16 MB; DROP', '-1MB']) {
      await expect(openStorage({ dataDir: place.dataDir, embeddedSharedBuffers: size })).rejects.toThrow(
        /embeddedSharedBuffers must be a size such as 16MB/,
      );
    }
    expect(await readdir(place.dataDir)).toEqual([]);
  });
});
