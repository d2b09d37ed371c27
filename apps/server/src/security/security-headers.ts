import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/** Headers every answer shares; only the CSP differs between the JSON API and the docs UI. */
const common = {
  // Matrix clients (Element web and others) call the client API from other origins, and the spec asks
  // homeservers to allow it; `same-origin` would block their no-cors loads.
  crossOriginResourcePolicy: { policy: 'cross-origin' },
  referrerPolicy: { policy: 'no-referrer' },
  // Nothing here is meant to be framed (frame-ancestors says the same to browsers that read CSP).
  xFrameOptions: { action: 'deny' },
} as const;

/** The JSON API renders nothing: nothing may load, nothing may frame it. */
const api = helmet({
  ...common,
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
  },
});

/**
 * The Swagger UI (/admin/docs) and the admin console (/admin/) load their own scripts and styles, set inline
 * styles, use data: images and call the API (`Try it out`, the console's views). No `upgrade-insecure-requests`:
 * on a plain-HTTP LAN address it would break the page's own assets.
 */
const pages = helmet({
  ...common,
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
  },
});

/** Whether a path is a page's (the docs UI, or the console: under /admin/, but not the API). */
function isAdminPage(path: string): boolean {
  return (path === '/admin' || path.startsWith('/admin/')) && !path.startsWith('/admin/v1/');
}

/** helmet for every answer, with the CSP chosen by path. */
export function securityHeaders(): Middleware {
  return (req, res, next) => (isAdminPage(req.path) ? pages : api)(req, res, next);
}
