import { MatrixError } from '../common/errors.js';

// mxc URIs name files, and names reach HTTP headers: everything here is checked against a whitelist, as the
// spec's security considerations of the content repository ask (no blacklisting of `.` and `/`).

/** Media ids: the spec's whitelist (`A-Za-z0-9`, `_`, `-`), at most 255 characters. */
const MEDIA_ID = /^[A-Za-z0-9_-]{1,255}$/;

/**
 * Server names (appendix "Server Name"): a host (DNS name or IPv4 address: 1 to 255 of `A-Za-z0-9.-`, which
 * polyhome's 64-character hex server names are) or a bracketed IPv6 address, with an optional port.
 */
const SERVER_NAME = /^(?:[A-Za-z0-9.-]{1,255}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** The longest Content-Type and file name kept, in characters. */
const MAX_HEADER_VALUE = 255;

/** A Content-Type: `type/subtype` of RFC 9110 token characters, optional parameters, no control characters. */
const CONTENT_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:\s*;[\x20-\x7e]*)?$/;

/**
 * Content types served `inline` (spec: "Serving inline content"); anything else is an `attachment`, so a browser
 * never renders uploaded HTML or SVG as a page of this origin.
 */
export const INLINE_CONTENT_TYPES: ReadonlySet<string> = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

/** Checks the server name and media id of an mxc URI from a path; throws 400 M_INVALID_PARAM when either is bad. */
export function checkMxc(serverName: string, mediaId: string): void {
  if (!SERVER_NAME.test(serverName))
    throw new MatrixError('M_INVALID_PARAM', 'The server name of the mxc URI is not a valid server name.');
  if (!MEDIA_ID.test(mediaId))
    throw new MatrixError(
      'M_INVALID_PARAM',
      'The media id of the mxc URI may hold only A-Z, a-z, 0-9, "_" and "-" (1 to 255 characters).',
    );
}

/**
 * A file name as given with an upload or a download: at most 255 characters, no control characters, no path
 * separators (it names a file, never a path). Absent or empty: null.
 */
export function checkFileName(name: unknown): string | null {
  if (name === undefined || name === '') return null;
  if (typeof name !== 'string') throw new MatrixError('M_INVALID_PARAM', 'filename must be given once, as text.');
  // eslint-disable-next-line no-control-regex
  if ([...name].length > MAX_HEADER_VALUE || /[\x00-\x1f\x7f/\\]/.test(name) || name === '.' || name === '..')
    throw new MatrixError(
      'M_INVALID_PARAM',
      'The file name must be at most 255 characters, without control characters, "/" or "\\".',
    );
  return name;
}

/** The upload's Content-Type header, checked; `application/octet-stream` when there is none. */
export function checkContentType(header: string | string[] | undefined): string {
  if (header === undefined || header === '') return 'application/octet-stream';
  if (typeof header !== 'string' || header.length > MAX_HEADER_VALUE || !CONTENT_TYPE.test(header))
    throw new MatrixError(
      'M_INVALID_PARAM',
      'Content-Type must be a media type like image/png (at most 255 characters).',
    );
  return header;
}

/** `type/subtype` of a Content-Type, lower case, without parameters. */
export function essence(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

/**
 * The `Content-Disposition` of a download: `inline` for the safe types, `attachment` otherwise, with the file
 * name as a quoted string when it is plain ASCII, else as RFC 8187 `filename*` (UTF-8, percent-encoded).
 */
export function contentDisposition(contentType: string, fileName: string | null): string {
  const type = INLINE_CONTENT_TYPES.has(essence(contentType)) ? 'inline' : 'attachment';
  if (fileName === null) return type;
  if (/^[\x20-\x7e]*$/.test(fileName) && !/["\\]/.test(fileName)) return `${type}; filename="${fileName}"`;
  const encoded = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${type}; filename*=utf-8''${encoded}`;
}
