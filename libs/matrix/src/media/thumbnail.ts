import sharp, { type Metadata } from 'sharp';
import { MatrixError } from '../common/errors.js';
import { essence } from './media-names.js';

/** Image types thumbnails are made of (what libvips in sharp decodes and clients upload). */
const THUMBNAIL_SOURCES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

/** Types the thumbnail endpoint may answer with (its response schema); an original of these can stand for one. */
const THUMBNAIL_TYPES: ReadonlySet<string> = new Set([
  'image/jpeg',
  'image/png',
  'image/apng',
  'image/gif',
  'image/webp',
]);

/** Pixels an image may have to be thumbnailed: a small file can decode to gigabytes (a decompression bomb). */
export const MAX_THUMBNAIL_PIXELS = 32_000_000;

/** Largest side a thumbnail may be asked for, in pixels. */
export const MAX_THUMBNAIL_SIDE = 2048;

/** A thumbnail request: the desired size and how to reach it (spec: "Thumbnails"). */
export interface ThumbnailRequest {
  width: number;
  height: number;
  method: 'crop' | 'scale';
}

/** A thumbnail, or the original when it is already small enough. */
export interface Thumbnail {
  contentType: string;
  bytes: Uint8Array;
}

/** Whether the content type is one thumbnails can be made of. */
export function canThumbnail(contentType: string): boolean {
  return THUMBNAIL_SOURCES.has(essence(contentType));
}

/**
 * The thumbnail of an image. Never upscales: an image no larger than the request is answered as it is (the
 * spec's "servers should return the original content"). `scale` keeps the aspect ratio and fits the image in
 * the box; `crop` fills the box and cuts what overflows, centred. JPEG sources give JPEG, others PNG (keeps
 * transparency); animations give their first frame. Throws 413 M_TOO_LARGE past `MAX_THUMBNAIL_PIXELS`, 400
 * M_UNKNOWN when the bytes are not a decodable image of that type.
 */
export async function makeThumbnail(contentType: string, bytes: Uint8Array, req: ThumbnailRequest): Promise<Thumbnail> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw cannotThumbnail();
  }
  const width = meta.width;
  const height = meta.pageHeight ?? meta.height;
  if (width * height > MAX_THUMBNAIL_PIXELS)
    throw new MatrixError('M_TOO_LARGE', `The image has more than ${MAX_THUMBNAIL_PIXELS} pixels to thumbnail.`);
  if (width <= req.width && height <= req.height && THUMBNAIL_TYPES.has(essence(contentType)))
    return { contentType: essence(contentType), bytes };
  const jpeg = essence(contentType) === 'image/jpeg';
  try {
    const pipeline = sharp(bytes, { limitInputPixels: MAX_THUMBNAIL_PIXELS, animated: false })
      .rotate() // EXIF orientation, so the thumbnail stands as the photo does
      .resize(req.width, req.height, {
        fit: req.method === 'crop' ? 'cover' : 'inside',
        withoutEnlargement: true,
      });
    const out = jpeg ? pipeline.jpeg({ quality: 80 }) : pipeline.png();
    return { contentType: jpeg ? 'image/jpeg' : 'image/png', bytes: await out.toBuffer() };
  } catch {
    throw cannotThumbnail();
  }
}

function cannotThumbnail(): MatrixError {
  return new MatrixError('M_UNKNOWN', 'Cannot generate a thumbnail of this content: it is not a readable image.', 400);
}
