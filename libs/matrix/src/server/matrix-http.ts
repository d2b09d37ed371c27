import { beginClientWork } from '@polyhome/sync';

/** The request and response fields this middleware touches, whatever the HTTP platform (Express here). */
interface HttpRequest {
  method?: string;
  url?: string;
}
interface HttpResponse {
  setHeader(name: string, value: string): void;
  statusCode: number;
  end(): void;
  once(event: 'close', listener: () => void): unknown;
}

/** The client-server API's CORS headers (spec: "Web Browser Clients"). */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'X-Requested-With, Content-Type, Authorization',
};

/**
 * Connect-style middleware every app mounts at its root, before its routes (`app.use(matrixHttp())`): every
 * Matrix path (`/_matrix/...`, `/.well-known/matrix/...`) carries the spec's CORS headers and has its preflight
 * answered, so web clients work from any origin (access tokens are bearer headers, never cookies), and
 * `/_matrix/client/r0/...` is served as `/_matrix/client/v3/...` (and `/_matrix/media/r0/...` as `v3`), as established servers still do for clients
 * that use it. Other paths (the server's admin API) are left alone. A plain function, not a Nest middleware:
 * Nest mounts those under a path, which hides the URL to rewrite.
 *
 * Each Matrix request counts as a client's work in flight until its response is closed (`beginClientWork`): batches
 * of received ops wait while there is any (see `replicationTurn` in @polyhome/sync).
 */
export function matrixHttp(): (req: HttpRequest, res: HttpResponse, next: () => void) => void {
  return (req, res, next) => {
    const url = req.url ?? '';
    if (!url.startsWith('/_matrix/') && !url.startsWith('/.well-known/matrix/')) {
      next();
      return;
    }
    for (const [name, value] of Object.entries(CORS_HEADERS)) res.setHeader(name, value);
    if (req.method === 'OPTIONS') {
      res.statusCode = 204;
      res.end();
      return;
    }
    res.once('close', beginClientWork());
    if (url.startsWith('/_matrix/client/r0/'))
      req.url = `/_matrix/client/v3/${url.slice('/_matrix/client/r0/'.length)}`;
    else if (url.startsWith('/_matrix/media/r0/'))
      req.url = `/_matrix/media/v3/${url.slice('/_matrix/media/r0/'.length)}`;
    next();
  };
}

/** Upload routes (`POST /_matrix/media/v3/upload`, `PUT .../upload/{serverName}/{mediaId}`): their body is a file. */
const MEDIA_UPLOAD = /^\/_matrix\/media\/(?:v3|r0)\/upload(?:[/?]|$)/;

/**
 * Wraps an app's body parser so it leaves media uploads alone: their body is the file, of any type (a JSON file
 * too) and up to the media cap, and the media routes stream it themselves. Mount it in place of the parser:
 * `app.use(skipMediaUploads(express.json(...)))`.
 */
export function skipMediaUploads<Req extends HttpRequest, Res>(
  parser: (req: Req, res: Res, next: (err?: unknown) => void) => void,
): (req: Req, res: Res, next: (err?: unknown) => void) => void {
  return (req, res, next) => {
    if (MEDIA_UPLOAD.test(req.url ?? '')) next();
    else parser(req, res, next);
  };
}
