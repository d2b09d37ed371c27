/** What the home knows of one piece of media: its mxc address, what the uploader said it is, and its size. */
export interface MatrixMediaInfo {
  /** The server name in its mxc URI: the uploader's account (`mxc://<serverName>/<mediaId>`). */
  serverName: string;
  mediaId: string;
  /** The uploader's user ID (who may finish an upload reserved with `/create`). */
  uploader: string;
  /** The `Content-Type` it was uploaded with (`application/octet-stream` when none was given). */
  contentType: string;
  /** The `filename` it was uploaded with, if any. */
  fileName: string | null;
  /** Bytes of content; null while an mxc URI reserved with `/create` has no content yet. */
  size: number | null;
  /** When an mxc URI reserved with `/create` and still empty stops being usable (ms since the epoch); else null. */
  unusedExpiresAt: number | null;
}

/** Content to store under a new or reserved mxc URI. */
export interface MatrixMediaUpload {
  serverName: string;
  mediaId: string;
  uploader: string;
  contentType: string;
  fileName: string | null;
  bytes: Uint8Array;
}

/** What `putContent` did: stored it, or nothing because the URI is unknown, someone else's, or already filled. */
export type MatrixMediaPut = 'stored' | 'not_found' | 'forbidden' | 'exists';

/**
 * Where a home keeps its media: local, unreplicated. `SqlMediaStore` of `@polyhome/storage` fits it (content in
 * the database, in chunks); a store on files under a data directory could take its place.
 */
export interface MatrixMediaStore {
  /** Stores new content under an mxc URI nobody holds yet (the media id is random). */
  insert(upload: MatrixMediaUpload): Promise<void>;
  /** Reserves an mxc URI with no content yet (`POST /v1/create`), usable until `expiresAt` (ms). */
  reserve(serverName: string, mediaId: string, uploader: string, expiresAt: number): Promise<void>;
  /** How many reserved, still empty and unexpired URIs the user holds (a bound on `/create`). */
  countReserved(uploader: string, now: number): Promise<number>;
  /** Fills a reserved URI (`PUT /v3/upload/{serverName}/{mediaId}`); only its uploader may, once, before it expires. */
  putContent(upload: MatrixMediaUpload, now: number): Promise<MatrixMediaPut>;
  /** The media's description, or null when this home holds no such media. */
  info(serverName: string, mediaId: string): Promise<MatrixMediaInfo | null>;
  /** The media's content, in order, a chunk at a time (never all of it in memory unless the caller gathers it). */
  content(serverName: string, mediaId: string): AsyncIterable<Uint8Array>;
}

/** Media held by another home, as a remote fetch returns it. */
export interface MatrixRemoteMedia {
  contentType: string;
  fileName: string | null;
  bytes: Uint8Array;
}

/**
 * Fetches media this home does not hold from the homes that do (other homes of the account, or of other
 * accounts, over libp2p): the seam for that later work. It returns null when no home has it, and must not
 * return more than `maxBytes`.
 */
export type MatrixRemoteMediaFetch = (
  serverName: string,
  mediaId: string,
  maxBytes: number,
) => Promise<MatrixRemoteMedia | null>;

/** The media part of the module's options. */
export interface MatrixMediaOptions {
  store: MatrixMediaStore;
  /** Largest upload in bytes (`m.upload.size`); a larger one is refused with 413 M_TOO_LARGE before it is read. */
  maxUploadBytes: number;
  /** Media not held here. Without it (today), such media is 404 M_NOT_FOUND. */
  fetchRemote?: MatrixRemoteMediaFetch;
}

/** The upload cap both apps default to: 50 MiB. */
export const DEFAULT_MEDIA_MAX_BYTES = 50 * 1024 * 1024;

/** Injection token of the media options. */
export const MATRIX_MEDIA = Symbol('MATRIX_MEDIA');
