import type { IncomingMessage, ServerResponse } from 'node:http';
import { MatrixError } from '../common/errors.js';

/**
 * Reads an upload's body, at most `maxBytes` of it. A body declared larger (`Content-Length`) is refused before
 * a byte of it is read, and a chunked one as soon as it passes the cap: 413 M_TOO_LARGE either way. The answer
 * then closes the connection (`Connection: close`), so the rest of the body is never read. Throws 400
 * M_MISSING_PARAM when there is no body.
 */
export function readUploadBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.reject(tooLarge(res, maxBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        // Stop reading (not destroy: that would close the socket before the 413 is written).
        req.pause();
        reject(tooLarge(res, maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      if (size === 0)
        reject(new MatrixError('M_MISSING_PARAM', "The upload has no content: send the file's bytes as the body."));
      else resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onAborted = (): void => onError(new Error('The client aborted the upload.'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function tooLarge(res: ServerResponse, maxBytes: number): MatrixError {
  // The unread rest of the body is not drained: the connection ends with this answer.
  res.setHeader('Connection', 'close');
  return new MatrixError('M_TOO_LARGE', `The upload is larger than this home's limit of ${maxBytes} bytes.`);
}
