// The wire of /polyhome/federation/1.0.0: HTTP/1.1 framing of one request and its answer on one libp2p stream.
// Only what the Matrix server-server API needs: a request line, headers, a Content-Length body (no chunked
// encoding, no keep-alive: one stream per request, closed after the answer), JSON bodies. Pure and small, so
// every cap is checked before anything is buffered beyond it; see docs/decisions.md for why @libp2p/http is
// not used.
import type { MessageStream } from '@libp2p/interface';
import type { ByteStream } from '@libp2p/utils';
import { jsonTextDepth } from '@polyhome/identity';

/** A refusal decided while reading or checking a request: answered with `status` and a Matrix error body. */
export class WireRefusal extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
  ) {
    super(message);
    this.name = 'WireRefusal';
  }
}

/** The request line and headers of a request, as far as this protocol reads them. */
export interface RequestHead {
  method: string;
  /** The request target as sent: path (still percent-encoded) and query. */
  target: string;
  contentLength: number;
  /** Every header, names lower-cased (a repeated one: the last). */
  headers: Map<string, string>;
}

/** The status line and headers of an answer, as far as this protocol reads them. */
export interface ResponseHead {
  status: number;
  contentLength: number;
  /** Every header, names lower-cased (a repeated one: the last). */
  headers: Map<string, string>;
}

const encoder = new TextEncoder();
const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Content Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
};
/** A method as this protocol sends and accepts it: upper-case letters. */
export const METHOD = /^[A-Z]{1,16}$/;
// A request target in origin form: a path from '/', an optional query; printable ASCII without spaces or '#'.
const TARGET = /^\/[\x21-\x22\x24-\x7e]*$/;
/** A path a caller may send: TARGET without a query (the query goes apart). */
export const PATH = /^\/[\x21-\x22\x24-\x3e\x40-\x7e]*$/;
const HEADER = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
const DIGITS = /^[0-9]{1,15}$/;

/** A header value that may be sent: printable ASCII and tabs (no CR or LF, so no header can be smuggled in). */
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;
/** A header name that may be sent (an HTTP token). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * The bytes of a message: the start line, the headers given (those that cannot be sent and any Content-Length
 * are left out), Content-Length of the body, a blank line, the body.
 */
export function encodeMessage(
  startLine: string,
  headers: Iterable<readonly [string, string]>,
  body: Uint8Array | undefined,
): Uint8Array {
  const lines = [startLine];
  for (const [name, value] of headers) {
    if (name.toLowerCase() === 'content-length' || !HEADER_NAME.test(name) || !HEADER_VALUE.test(value)) continue;
    lines.push(`${name}: ${value}`);
  }
  lines.push(`Content-Length: ${body?.byteLength ?? 0}`, '', '');
  return concat(encoder.encode(lines.join('\r\n')), body);
}

/** The status line of an answer. */
export function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${REASONS[status] ?? 'Status'}`;
}

/** The bytes of a request: request line, Content-Length (and Content-Type for a body), blank line, body. */
export function encodeRequest(method: string, target: string, body: Uint8Array | undefined): Uint8Array {
  const headers: Array<[string, string]> = body === undefined ? [] : [['Content-Type', 'application/json']];
  return encodeMessage(`${method} ${target} HTTP/1.1`, headers, body);
}

/** The bytes of an answer with a JSON body. */
export function encodeResponse(status: number, body: Uint8Array): Uint8Array {
  return encodeMessage(
    statusLine(status),
    [
      ['Content-Type', 'application/json'],
      ['Connection', 'close'],
    ],
    body,
  );
}

/** Parses a request head (the text before the blank line); throws WireRefusal (400) when it is not one. */
export function parseRequestHead(text: string): RequestHead {
  const [requestLine = '', ...headerLines] = text.split('\r\n');
  const parts = requestLine.split(' ');
  const [method = '', target = '', version = ''] = parts;
  if (parts.length !== 3 || version !== 'HTTP/1.1') {
    throw new WireRefusal(400, 'M_UNRECOGNIZED', 'The request line is not "<METHOD> <path> HTTP/1.1".');
  }
  if (!METHOD.test(method)) throw new WireRefusal(400, 'M_UNRECOGNIZED', 'The request method is not a method.');
  if (!TARGET.test(target)) {
    throw new WireRefusal(400, 'M_UNRECOGNIZED', 'The request target is not a path (origin form, printable ASCII).');
  }
  const headers = parseHeaders(headerLines, (reason) => new WireRefusal(400, 'M_UNRECOGNIZED', reason));
  if (headers.has('transfer-encoding')) {
    throw new WireRefusal(400, 'M_UNRECOGNIZED', 'Transfer-Encoding is not supported: send Content-Length.');
  }
  const length = headers.get('content-length');
  if (length !== undefined && !DIGITS.test(length)) {
    throw new WireRefusal(400, 'M_UNRECOGNIZED', 'Content-Length is not a number of bytes.');
  }
  return { method, target, contentLength: length === undefined ? 0 : Number(length), headers };
}

/** Parses an answer head; throws `fail(reason)` when it is not an HTTP/1.1 answer with a Content-Length. */
export function parseResponseHead(text: string, fail: (reason: string) => Error): ResponseHead {
  const [statusLine = '', ...headerLines] = text.split('\r\n');
  const status = /^HTTP\/1\.1 ([1-5][0-9]{2})(?: .*)?$/.exec(statusLine);
  if (status === null) throw fail('the status line is not "HTTP/1.1 <status> <reason>"');
  const headers = parseHeaders(headerLines, fail);
  const length = headers.get('content-length');
  if (length === undefined || !DIGITS.test(length)) throw fail('the answer has no Content-Length');
  return { status: Number(status[1]), contentLength: Number(length), headers };
}

// Header names lowercased; a repeated Content-Length or Transfer-Encoding is refused (request smuggling habit).
function parseHeaders(lines: readonly string[], fail: (reason: string) => Error): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of lines) {
    const match = HEADER.exec(line);
    if (match === null) throw fail('a header line is not "Name: value"');
    const name = match[1]!.toLowerCase();
    if (headers.has(name) && (name === 'content-length' || name === 'transfer-encoding')) {
      throw fail(`the ${name} header is repeated`);
    }
    headers.set(name, match[2]!);
  }
  return headers;
}

/**
 * Whether a JSON text nests arrays and objects deeper than `maxDepth`: one pass over the characters, before
 * JSON.parse, so a deeply nested body is refused without building it (and never reaches recursive code such as
 * canonical JSON).
 */
export function jsonDepthExceeds(text: string, maxDepth: number): boolean {
  return jsonTextDepth(text, maxDepth) > maxDepth;
}

/** Thrown by readHead when the head is longer than its cap. */
export class HeadTooLargeError extends Error {
  constructor(maxBytes: number) {
    super(`the head is longer than ${maxBytes} bytes`);
    this.name = 'HeadTooLargeError';
  }
}

/** Thrown by readHead and readBody when the stream ends first. */
export class StreamEndedError extends Error {
  constructor(what: string) {
    super(`the stream ended before the ${what}`);
    this.name = 'StreamEndedError';
  }
}

/**
 * Reads up to the blank line that ends a head: the head's text and the bytes read after it (the body's start).
 * Throws HeadTooLargeError past `maxBytes` and StreamEndedError at the end of the stream.
 */
export async function readHead(
  source: ChunkSource,
  maxBytes: number,
  signal: AbortSignal,
): Promise<{ head: string; rest: Uint8Array }> {
  let buffer: Uint8Array = new Uint8Array(0);
  for (;;) {
    let chunk: Uint8Array | null;
    try {
      chunk = await source.read(signal);
    } catch (err) {
      if (err instanceof BufferOverflowError) throw new HeadTooLargeError(maxBytes);
      throw err;
    }
    if (chunk === null) throw new StreamEndedError('end of the head');
    const from = Math.max(0, buffer.byteLength - 3);
    buffer = concat(buffer, chunk);
    const end = indexOfBlankLine(buffer, from);
    if (end >= 0) {
      if (end > maxBytes) throw new HeadTooLargeError(maxBytes);
      return { head: new TextDecoder('latin1').decode(buffer.subarray(0, end)), rest: buffer.subarray(end + 4) };
    }
    if (buffer.byteLength > maxBytes) throw new HeadTooLargeError(maxBytes);
  }
}

/** Reads a body of `length` bytes, `rest` being what readHead read past the head; StreamEndedError if it ends first. */
export async function readBody(
  source: ChunkSource,
  rest: Uint8Array,
  length: number,
  signal: AbortSignal,
): Promise<Uint8Array> {
  const chunks = [rest];
  let have = rest.byteLength;
  while (have < length) {
    const chunk = await source.read(signal);
    if (chunk === null) throw new StreamEndedError('end of the body');
    chunks.push(chunk);
    have += chunk.byteLength;
  }
  return concatAll(chunks).subarray(0, length);
}

/**
 * Reads a server's side of a request stream while bounding what it holds: at most `limit` bytes are kept;
 * beyond that further data is dropped (not an abort, so a refusal can still be written and read), and the next
 * read that needs it throws HeadTooLargeError or BufferOverflowError. `discard()` stops keeping anything (a
 * refused request's body is never buffered).
 */
export class BoundedReader {
  readonly #stream: MessageStream;
  readonly #limit: number;
  #chunks: Uint8Array[] = [];
  #kept = 0;
  #overflow = false;
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(stream: MessageStream, limit: number) {
    this.#stream = stream;
    this.#limit = limit;
    stream.addEventListener('message', this.#onMessage);
    stream.addEventListener('remoteCloseWrite', this.#onEnd);
    stream.addEventListener('close', this.#onEnd);
  }

  /** Stops reading: what is held is dropped, and what comes later is not kept. */
  discard(): void {
    this.#stream.removeEventListener('message', this.#onMessage);
    this.#stream.removeEventListener('remoteCloseWrite', this.#onEnd);
    this.#stream.removeEventListener('close', this.#onEnd);
    this.#chunks = [];
    this.#kept = 0;
  }

  /** The next bytes held (all of them), or null at the end of the stream; throws BufferOverflowError. */
  async read(signal: AbortSignal): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#chunks.length > 0) {
        const out = this.#chunks.length === 1 ? this.#chunks[0]! : concatAll(this.#chunks);
        this.#chunks = [];
        this.#kept = 0;
        return out;
      }
      if (this.#overflow) throw new BufferOverflowError(this.#limit);
      if (this.#ended) return null;
      signal.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
        this.#wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
      });
    }
  }

  readonly #onMessage = (event: { data: Uint8Array | { subarray(): Uint8Array } }): void => {
    const data = event.data.subarray();
    if (this.#overflow) return;
    // What fits is kept even from a chunk that overflows: it holds the head a refusal is decided on.
    const room = this.#limit - this.#kept;
    if (data.byteLength > room) this.#overflow = true;
    const kept = data.byteLength > room ? data.subarray(0, room) : data;
    if (kept.byteLength > 0) {
      this.#chunks.push(kept);
      this.#kept += kept.byteLength;
    }
    this.#notify();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#notify();
  };

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** Thrown by BoundedReader when more arrived than it may hold (a body longer than its Content-Length). */
export class BufferOverflowError extends Error {
  constructor(limit: number) {
    super(`more than ${limit} bytes arrived unread`);
    this.name = 'BufferOverflowError';
  }
}

/** Reads from a byte stream or a BoundedReader: the next bytes, or null at the end. */
export type ChunkSource = { read(signal: AbortSignal): Promise<Uint8Array | null> };

/** A ChunkSource over @libp2p/utils' byteStream (the caller's side). */
export function byteStreamSource(bytes: ByteStream<MessageStream>): ChunkSource {
  return { read: async (signal) => (await bytes.read({ signal }))?.subarray() ?? null };
}

function concatAll(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

function indexOfBlankLine(buffer: Uint8Array, from: number): number {
  for (let i = from; i + 3 < buffer.byteLength; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array | undefined): Uint8Array {
  if (b === undefined || b.byteLength === 0) return a;
  if (a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
