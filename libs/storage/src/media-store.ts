import { IsNull, MoreThan, type DataSource, type EntityManager } from 'typeorm';
import { MatrixMediaChunkEntity, MatrixMediaEntity } from './entities/matrix-media.entity.js';

/** Bytes per stored chunk: each row, insert and read stays this small, whatever the file. */
export const MEDIA_CHUNK_BYTES = 1024 * 1024;

/** Media as described here (see `MatrixMediaInfo` of `@polyhome/matrix`, which this matches). */
export interface StoredMediaInfo {
  serverName: string;
  mediaId: string;
  uploader: string;
  contentType: string;
  fileName: string | null;
  size: number | null;
  unusedExpiresAt: number | null;
}

/** Content to store under an mxc URI. */
export interface MediaUpload {
  serverName: string;
  mediaId: string;
  uploader: string;
  contentType: string;
  fileName: string | null;
  bytes: Uint8Array;
}

/**
 * The content repository on PostgreSQL or PGlite: descriptions in `matrix_media`, content in 1 MiB rows of
 * `matrix_media_chunk`. Content in the database rather than in files, so server instances sharing one database
 * serve each other's uploads, and a node's media lives in its PGlite directory with everything else. It
 * matches the `MatrixMediaStore` port of `@polyhome/matrix` structurally.
 */
export class SqlMediaStore {
  constructor(private readonly dataSource: DataSource) {}

  /** Stores new content and its description in one transaction. */
  async insert(upload: MediaUpload): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.getRepository(MatrixMediaEntity).insert({
        serverName: upload.serverName,
        mediaId: upload.mediaId,
        uploader: upload.uploader,
        contentType: upload.contentType,
        fileName: upload.fileName,
        size: String(upload.bytes.length),
        unusedExpiresAt: null,
      });
      await insertChunks(manager, upload);
    });
  }

  /** Reserves an mxc URI without content until `expiresAt` (ms). */
  async reserve(serverName: string, mediaId: string, uploader: string, expiresAt: number): Promise<void> {
    await this.dataSource.getRepository(MatrixMediaEntity).insert({
      serverName,
      mediaId,
      uploader,
      contentType: 'application/octet-stream',
      fileName: null,
      size: null,
      unusedExpiresAt: new Date(expiresAt),
    });
  }

  /** Reserved URIs of the user still without content and not expired at `now` (ms). */
  countReserved(uploader: string, now: number): Promise<number> {
    return this.dataSource
      .getRepository(MatrixMediaEntity)
      .countBy({ uploader, size: IsNull(), unusedExpiresAt: MoreThan(new Date(now)) });
  }

  /**
   * Fills a reserved URI, holding its row locked so two uploads to it cannot both succeed. Nothing is stored
   * unless the URI is reserved by `upload.uploader`, still empty, and not expired at `now`.
   */
  putContent(upload: MediaUpload, now: number): Promise<'stored' | 'not_found' | 'forbidden' | 'exists'> {
    return this.dataSource.transaction(async (manager) => {
      const repo = manager.getRepository(MatrixMediaEntity);
      const key = { serverName: upload.serverName, mediaId: upload.mediaId };
      const row = await repo.findOne({ where: key, lock: { mode: 'pessimistic_write' } });
      if (row === null) return 'not_found';
      if (row.uploader !== upload.uploader) return 'forbidden';
      if (row.size !== null) return 'exists';
      if (row.unusedExpiresAt === null || row.unusedExpiresAt.getTime() <= now) return 'not_found';
      await insertChunks(manager, upload);
      await repo.update(key, {
        contentType: upload.contentType,
        fileName: upload.fileName,
        size: String(upload.bytes.length),
        unusedExpiresAt: null,
      });
      return 'stored';
    });
  }

  /** The description of the media, or null. */
  async info(serverName: string, mediaId: string): Promise<StoredMediaInfo | null> {
    const row = await this.dataSource.getRepository(MatrixMediaEntity).findOneBy({ serverName, mediaId });
    if (row === null) return null;
    return {
      serverName: row.serverName,
      mediaId: row.mediaId,
      uploader: row.uploader,
      contentType: row.contentType,
      fileName: row.fileName,
      size: row.size === null ? null : Number(row.size),
      unusedExpiresAt: row.unusedExpiresAt?.getTime() ?? null,
    };
  }

  /** The content, one chunk per query, in order (nothing for unknown media). */
  async *content(serverName: string, mediaId: string): AsyncGenerator<Uint8Array> {
    const repo = this.dataSource.getRepository(MatrixMediaChunkEntity);
    for (let seq = 0; ; seq++) {
      const chunk = await repo.findOne({ select: { bytes: true }, where: { serverName, mediaId, seq } });
      if (chunk === null) return;
      yield chunk.bytes;
    }
  }
}

async function insertChunks(manager: EntityManager, upload: MediaUpload): Promise<void> {
  const repo = manager.getRepository(MatrixMediaChunkEntity);
  const bytes = Buffer.from(upload.bytes.buffer, upload.bytes.byteOffset, upload.bytes.byteLength);
  for (let seq = 0; seq * MEDIA_CHUNK_BYTES < bytes.length; seq++) {
    await repo.insert({
      serverName: upload.serverName,
      mediaId: upload.mediaId,
      seq,
      bytes: bytes.subarray(seq * MEDIA_CHUNK_BYTES, (seq + 1) * MEDIA_CHUNK_BYTES),
    });
  }
}
