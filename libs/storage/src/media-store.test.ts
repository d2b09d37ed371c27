// The content repository's store on PostgreSQL and PGlite: content in 1 MiB chunks that read back as written,
// URIs reserved with /create filled once and only by their uploader, nothing stored by a refused fill.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from './data-source.js';
import { MEDIA_CHUNK_BYTES, SqlMediaStore, type MediaUpload } from './media-store.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';
import { table } from './testing/tables.js';

const SERVER = 'media.example';
const ALICE = '@alice:media.example';

async function gather(chunks: AsyncIterable<Uint8Array>): Promise<{ bytes: Buffer; count: number }> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return { bytes: Buffer.concat(parts), count: parts.length };
}

function upload(mediaId: string, bytes: Uint8Array, uploader = ALICE): MediaUpload {
  return { serverName: SERVER, mediaId, uploader, contentType: 'image/png', fileName: 'cat.png', bytes };
}

describe.each(STORAGE_BACKENDS)('SqlMediaStore on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let store: SqlMediaStore;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    store = new SqlMediaStore(storage.dataSource);
  });
  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  it('stores content in chunks and reads it back byte for byte, with its description', async () => {
    const bytes = randomBytes(2 * MEDIA_CHUNK_BYTES + 12_345);
    await store.insert(upload('big', bytes));
    const read = await gather(store.content(SERVER, 'big'));
    expect(read.count).toBe(3);
    expect(read.bytes.equals(bytes)).toBe(true);
    expect(await table(storage, 'matrix_media_chunk').count({ mediaId: 'big' })).toBe(3);
    expect(await store.info(SERVER, 'big')).toEqual({
      serverName: SERVER,
      mediaId: 'big',
      uploader: ALICE,
      contentType: 'image/png',
      fileName: 'cat.png',
      size: bytes.length,
      unusedExpiresAt: null,
    });
    // A media id is not reused: a second insert under it fails and leaves the first.
    await expect(store.insert(upload('big', randomBytes(10)))).rejects.toThrow();
    expect((await gather(store.content(SERVER, 'big'))).bytes.equals(bytes)).toBe(true);
  });

  it('knows nothing of media it does not hold', async () => {
    expect(await store.info(SERVER, 'nope')).toBeNull();
    expect((await gather(store.content(SERVER, 'nope'))).count).toBe(0);
    expect(await store.info('other.example', 'big')).toBeNull();
  });

  it('fills a reserved URI once, by its uploader, before it expires; refusals store nothing', async () => {
    const now = Date.now();
    await store.reserve(SERVER, 'r1', ALICE, now + 60_000);
    await store.reserve(SERVER, 'old', ALICE, now - 1);
    expect(await store.countReserved(ALICE, now)).toBe(1);
    expect(await store.info(SERVER, 'r1')).toMatchObject({ size: null, unusedExpiresAt: now + 60_000 });

    expect(await store.putContent(upload('r1', randomBytes(10), '@mallory:media.example'), now)).toBe('forbidden');
    expect(await store.putContent(upload('old', randomBytes(10)), now)).toBe('not_found');
    expect(await store.putContent(upload('unknown', randomBytes(10)), now)).toBe('not_found');
    expect(await table(storage, 'matrix_media_chunk').count({ mediaId: 'r1' })).toBe(0);

    const bytes = randomBytes(100);
    expect(await store.putContent(upload('r1', bytes), now)).toBe('stored');
    expect(await store.info(SERVER, 'r1')).toMatchObject({ size: 100, unusedExpiresAt: null, fileName: 'cat.png' });
    expect(await store.countReserved(ALICE, now)).toBe(0);
    expect(await store.putContent(upload('r1', randomBytes(5)), now)).toBe('exists');
    expect((await gather(store.content(SERVER, 'r1'))).bytes.equals(bytes)).toBe(true);
  });
});
