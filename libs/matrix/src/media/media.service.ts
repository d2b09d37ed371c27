import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable } from '@nestjs/common';
import type { MatrixSession } from '../auth/session.js';
import { MatrixError } from '../common/errors.js';
import { randomToken } from '../common/random.js';
import { checkContentType, checkFileName, checkMxc, contentDisposition } from './media-names.js';
import { MATRIX_MEDIA, type MatrixMediaInfo, type MatrixMediaOptions } from './media-port.js';
import { canThumbnail, makeThumbnail, MAX_THUMBNAIL_SIDE, type ThumbnailRequest } from './thumbnail.js';
import { readUploadBody } from './upload-body.js';

/** How long an mxc URI reserved with `/create` waits for its content (Synapse uses the same day). */
export const UNUSED_MEDIA_TTL_MS = 24 * 60 * 60 * 1000;

/** mxc URIs a user may hold reserved and empty at once; `/create` past it is 429 M_LIMIT_EXCEEDED. */
export const MAX_RESERVED_MEDIA = 20;

/**
 * Headers of every media answer (spec: "Content repository"): the recommended sandboxing policy, so content
 * opened in a browser tab cannot run script as this origin; readable by web clients of any origin; never
 * sniffed into another type.
 */
const MEDIA_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';",
  'Cross-Origin-Resource-Policy': 'cross-origin',
  'X-Content-Type-Options': 'nosniff',
  // Content under an mxc URI never changes; it is private to whoever may fetch it.
  'Cache-Control': 'private, max-age=86400, immutable',
};

/** Media found for a download: here (`bytes` absent: streamed from the store) or fetched from another home. */
interface Found {
  contentType: string;
  fileName: string | null;
  size: number;
  bytes?: Uint8Array;
}

/** The content repository: uploads to this home, downloads and thumbnails of what it holds. */
@Injectable()
export class MediaService {
  constructor(@Inject(MATRIX_MEDIA) private readonly media: MatrixMediaOptions) {}

  /** GET /config: the largest upload. */
  config(): { 'm.upload.size': number } {
    return { 'm.upload.size': this.media.maxUploadBytes };
  }

  /** POST /upload: stores the body under a new mxc URI of the session's account. */
  async upload(
    s: MatrixSession,
    req: IncomingMessage,
    res: ServerResponse,
    filename: unknown,
  ): Promise<{ content_uri: string }> {
    const fileName = checkFileName(filename);
    const contentType = checkContentType(req.headers['content-type']);
    const bytes = await readUploadBody(req, res, this.media.maxUploadBytes);
    const mediaId = randomToken(24);
    await this.media.store.insert({
      serverName: s.serverName,
      mediaId,
      uploader: s.userId,
      contentType,
      fileName,
      bytes,
    });
    return { content_uri: `mxc://${s.serverName}/${mediaId}` };
  }

  /** POST /v1/create: reserves an mxc URI to upload to later (at most `MAX_RESERVED_MEDIA` waiting per user). */
  async create(s: MatrixSession): Promise<{ content_uri: string; unused_expires_at: number }> {
    const now = Date.now();
    if ((await this.media.store.countReserved(s.userId, now)) >= MAX_RESERVED_MEDIA)
      throw new MatrixError(
        'M_LIMIT_EXCEEDED',
        `You hold ${MAX_RESERVED_MEDIA} reserved mxc URIs without content: upload to them first.`,
        429,
        { retry_after_ms: 60_000 },
      );
    const mediaId = randomToken(24);
    const expiresAt = now + UNUSED_MEDIA_TTL_MS;
    await this.media.store.reserve(s.serverName, mediaId, s.userId, expiresAt);
    return { content_uri: `mxc://${s.serverName}/${mediaId}`, unused_expires_at: expiresAt };
  }

  /** PUT /upload/{serverName}/{mediaId}: fills a URI reserved with `/create`, checked before the body is read. */
  async uploadTo(
    s: MatrixSession,
    serverName: string,
    mediaId: string,
    req: IncomingMessage,
    res: ServerResponse,
    filename: unknown,
  ): Promise<Record<string, never>> {
    checkMxc(serverName, mediaId);
    const fileName = checkFileName(filename);
    const contentType = checkContentType(req.headers['content-type']);
    const now = Date.now();
    const held = await this.media.store.info(serverName, mediaId);
    refusePut(held === null ? 'not_found' : check(held, s.userId, now));
    const bytes = await readUploadBody(req, res, this.media.maxUploadBytes);
    refusePut(
      await this.media.store.putContent({ serverName, mediaId, uploader: s.userId, contentType, fileName, bytes }, now),
    );
    return {};
  }

  /** GET /download/{serverName}/{mediaId}[/{fileName}]: the content, with the headers the spec asks for. */
  async download(
    serverName: string,
    mediaId: string,
    fileNameOverride: string | undefined,
    res: ServerResponse,
  ): Promise<void> {
    checkMxc(serverName, mediaId);
    const override = fileNameOverride === undefined ? null : checkFileName(fileNameOverride);
    const found = await this.find(serverName, mediaId);
    send(res, found.contentType, override ?? found.fileName, found.size);
    const body = found.bytes ?? this.media.store.content(serverName, mediaId);
    try {
      await pipeline(Readable.from(body instanceof Uint8Array ? [body] : body), res);
    } catch {
      // The client went away, or the store failed after the headers left: nothing can be answered any more,
      // and the connection is closed short of Content-Length, which the client sees as a failed download.
      res.destroy();
    }
  }

  /** GET /thumbnail/{serverName}/{mediaId}: a thumbnail no larger than needed (see `makeThumbnail`). */
  async thumbnail(
    serverName: string,
    mediaId: string,
    query: Record<string, unknown>,
    res: ServerResponse,
  ): Promise<void> {
    checkMxc(serverName, mediaId);
    const request = thumbnailRequest(query);
    const found = await this.find(serverName, mediaId);
    if (!canThumbnail(found.contentType))
      throw new MatrixError('M_UNKNOWN', `Cannot generate thumbnails of ${found.contentType} content.`, 400);
    const bytes = found.bytes ?? (await gather(this.media.store.content(serverName, mediaId)));
    const thumb = await makeThumbnail(found.contentType, bytes, request);
    const name = `thumbnail.${thumb.contentType === 'image/jpeg' ? 'jpg' : thumb.contentType.slice('image/'.length)}`;
    send(res, thumb.contentType, name, thumb.bytes.length);
    res.end(thumb.bytes);
  }

  /** The media here, else from another home through the remote fetch hook; 404 M_NOT_FOUND, 504 when not yet uploaded. */
  private async find(serverName: string, mediaId: string): Promise<Found> {
    const info = await this.media.store.info(serverName, mediaId);
    if (info !== null) {
      if (info.size !== null) return { contentType: info.contentType, fileName: info.fileName, size: info.size };
      if (info.unusedExpiresAt !== null && info.unusedExpiresAt > Date.now())
        throw new MatrixError('M_NOT_YET_UPLOADED', 'The content of this mxc URI has not been uploaded yet.');
      throw notFound();
    }
    const remote = await this.media.fetchRemote?.(serverName, mediaId, this.media.maxUploadBytes);
    if (remote === undefined || remote === null) throw notFound();
    if (remote.bytes.length > this.media.maxUploadBytes)
      throw new MatrixError('M_TOO_LARGE', 'The remote content is larger than this home serves.', 502);
    return {
      contentType: remote.contentType,
      fileName: remote.fileName,
      size: remote.bytes.length,
      bytes: remote.bytes,
    };
  }
}

/** Starts a 200 answer of media: its type, disposition and length, and the spec's headers. */
function send(res: ServerResponse, contentType: string, fileName: string | null, size: number): void {
  for (const [name, value] of Object.entries(MEDIA_HEADERS)) res.setHeader(name, value);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Disposition', contentDisposition(contentType, fileName));
  res.setHeader('Content-Length', String(size));
  res.statusCode = 200;
}

function notFound(): MatrixError {
  return new MatrixError('M_NOT_FOUND', 'No media with this mxc URI is held here.');
}

/** Whether the session's user may fill this reserved URI now. */
function check(held: MatrixMediaInfo, userId: string, now: number): 'stored' | 'not_found' | 'forbidden' | 'exists' {
  if (held.uploader !== userId) return 'forbidden';
  if (held.size !== null) return 'exists';
  if (held.unusedExpiresAt === null || held.unusedExpiresAt <= now) return 'not_found';
  return 'stored';
}

function refusePut(outcome: 'stored' | 'not_found' | 'forbidden' | 'exists'): void {
  switch (outcome) {
    case 'stored':
      return;
    case 'not_found':
      throw new MatrixError(
        'M_NOT_FOUND',
        'No reserved mxc URI with this id: make one with POST /_matrix/media/v1/create.',
      );
    case 'forbidden':
      throw new MatrixError('M_FORBIDDEN', 'This mxc URI was reserved by another user.');
    case 'exists':
      throw new MatrixError('M_CANNOT_OVERWRITE_MEDIA', 'This mxc URI already has content; media never changes.');
  }
}

/** width, height (whole numbers from 1 to MAX_THUMBNAIL_SIDE) and method (crop or scale, default scale). */
function thumbnailRequest(query: Record<string, unknown>): ThumbnailRequest {
  const side = (name: string): number => {
    const value = query[name];
    if (
      typeof value !== 'string' ||
      !/^\d{1,5}$/.test(value) ||
      Number(value) < 1 ||
      Number(value) > MAX_THUMBNAIL_SIDE
    )
      throw new MatrixError('M_INVALID_PARAM', `${name} must be a whole number from 1 to ${MAX_THUMBNAIL_SIDE}.`);
    return Number(value);
  };
  const method = query['method'] ?? 'scale';
  if (method !== 'crop' && method !== 'scale')
    throw new MatrixError('M_INVALID_PARAM', 'method must be crop or scale.');
  return { width: side('width'), height: side('height'), method };
}

async function gather(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
