import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, HttpCode, Param, Post, Put, Query, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { AccessTokenGuard } from '../auth/access-token.guard.js';
import { Session, type MatrixSession } from '../auth/session.js';
import { MatrixExceptionFilter } from '../common/matrix-exception.filter.js';
import { MediaService } from './media.service.js';

/**
 * The authenticated content repository (spec v1.11, `/_matrix/client/v1/media/*`): downloads, thumbnails and
 * the upload limit, for any signed-in user of this home.
 */
@Controller('_matrix/client/v1/media')
@UseFilters(MatrixExceptionFilter)
@UseGuards(AccessTokenGuard)
export class MediaController {
  constructor(private readonly media: MediaService) {}

  /** getConfigAuthed: GET /config. */
  @Get('config')
  config(): { 'm.upload.size': number } {
    return this.media.config();
  }

  /** getContentAuthed: GET /download/{serverName}/{mediaId}. */
  @Get('download/:serverName/:mediaId')
  download(
    @Param('serverName') serverName: string,
    @Param('mediaId') mediaId: string,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.media.download(serverName, mediaId, undefined, res);
  }

  /** getContentOverrideNameAuthed: GET /download/{serverName}/{mediaId}/{fileName}. */
  @Get('download/:serverName/:mediaId/:fileName')
  downloadNamed(
    @Param('serverName') serverName: string,
    @Param('mediaId') mediaId: string,
    @Param('fileName') fileName: string,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.media.download(serverName, mediaId, fileName, res);
  }

  /** getContentThumbnailAuthed: GET /thumbnail/{serverName}/{mediaId}?width&height&method. */
  @Get('thumbnail/:serverName/:mediaId')
  thumbnail(
    @Param('serverName') serverName: string,
    @Param('mediaId') mediaId: string,
    @Query() query: Record<string, unknown>,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.media.thumbnail(serverName, mediaId, query, res);
  }
}

/**
 * `/_matrix/media/*`: uploads (still here in the spec, authenticated), and the deprecated unauthenticated
 * downloads and thumbnails that clients without authenticated media still use.
 */
@Controller('_matrix/media')
@UseFilters(MatrixExceptionFilter)
export class LegacyMediaController {
  constructor(private readonly media: MediaService) {}

  /** uploadContent: POST /v3/upload?filename, the body is the file. */
  @Post('v3/upload')
  @HttpCode(200)
  @UseGuards(AccessTokenGuard)
  upload(
    @Session() s: MatrixSession,
    @Query('filename') filename: unknown,
    @Req() req: IncomingMessage,
    @Res({ passthrough: true }) res: ServerResponse,
  ): Promise<{ content_uri: string }> {
    return this.media.upload(s, req, res, filename);
  }

  /** createContent: POST /v1/create, an mxc URI to upload to later. */
  @Post('v1/create')
  @HttpCode(200)
  @UseGuards(AccessTokenGuard)
  create(@Session() s: MatrixSession): Promise<{ content_uri: string; unused_expires_at: number }> {
    return this.media.create(s);
  }

  /** uploadContentToMXC: PUT /v3/upload/{serverName}/{mediaId}. */
  @Put('v3/upload/:serverName/:mediaId')
  @UseGuards(AccessTokenGuard)
  uploadTo(
    @Session() s: MatrixSession,
    @Param('serverName') serverName: string,
    @Param('mediaId') mediaId: string,
    @Query('filename') filename: unknown,
    @Req() req: IncomingMessage,
    @Res({ passthrough: true }) res: ServerResponse,
  ): Promise<Record<string, never>> {
    return this.media.uploadTo(s, serverName, mediaId, req, res, filename);
  }

  /** getConfig (deprecated): GET /v3/config. */
  @Get('v3/config')
  @UseGuards(AccessTokenGuard)
  config(): { 'm.upload.size': number } {
    return this.media.config();
  }

  /** getContent (deprecated, unauthenticated): GET /v3/download/{serverName}/{mediaId}. */
  @Get('v3/download/:serverName/:mediaId')
  download(
    @Param('serverName') serverName: string,
    @Param('mediaId') mediaId: string,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.media.download(serverName, mediaId, undefined, res);
  }

  /** getContentOverrideName (deprecated, unauthenticated): GET /v3/download/{serverName}/{mediaId}/{fileName}. */
  @Get('v3/download/:serverName/:mediaId/:fileName')
  downloadNamed(
    @Param('serverName') serverName: string,
    @Param('mediaId') mediaId: string,
    @Param('fileName') fileName: string,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.media.download(serverName, mediaId, fileName, res);
  }

  /** getContentThumbnail (deprecated, unauthenticated): GET /v3/thumbnail/{serverName}/{mediaId}. */
  @Get('v3/thumbnail/:serverName/:mediaId')
  thumbnail(
    @Param('serverName') serverName: string,
    @Param('mediaId') mediaId: string,
    @Query() query: Record<string, unknown>,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.media.thumbnail(serverName, mediaId, query, res);
  }
}
