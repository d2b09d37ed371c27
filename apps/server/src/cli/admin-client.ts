// The admin REST API as `polyhome-admin` calls it: one request function, and errors that say what to do.

/** Exit codes of `polyhome-admin`. */
export const EXIT_OK = 0;
/** The server refused the request (its errcode and message are printed). */
export const EXIT_REFUSED = 1;
/** The command line was wrong (a missing argument or option). */
export const EXIT_USAGE = 2;
/** The server could not be reached, or answered something that is not the admin API. */
export const EXIT_UNREACHABLE = 3;

/** Default server URL (the server's default HOST and PORT). */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8008';

/** How long one request may take before the CLI gives up. */
const REQUEST_TIMEOUT_MS = 60_000;

/** An error for the person at the terminal: one line, saying what went wrong and what to do. */
export class AdminCliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The server's errcode, when it answered one. */
    readonly errcode?: string,
  ) {
    super(message);
    this.name = 'AdminCliError';
  }
}

/** Where the admin API is and the token for it. */
export interface AdminTarget {
  url: string;
  token: string;
}

/** Calls one admin route; returns the parsed JSON body of a 2xx answer, else throws AdminCliError. */
export async function callAdmin(target: AdminTarget, method: string, route: string, body?: unknown): Promise<unknown> {
  const base = target.url.replace(/\/+$/, '');
  let res: Response;
  try {
    res = await fetch(`${base}${route}`, {
      method,
      headers: {
        Authorization: `Bearer ${target.token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new AdminCliError(
      `Could not reach the server at ${base} (${why}). Is it running? Give its address with --url or POLYHOME_ADMIN_URL.`,
      EXIT_UNREACHABLE,
    );
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new AdminCliError(
      `${base}${route} answered ${res.status} with something that is not JSON: is ${base} a polyhome server?`,
      EXIT_UNREACHABLE,
    );
  }
  if (res.ok) return parsed;
  const answer = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { errcode?: string; error?: string };
  const errcode = answer.errcode ?? `HTTP ${res.status}`;
  const error = answer.error ?? res.statusText;
  throw new AdminCliError(`${errcode}: ${error}${hintFor(answer.errcode, res.status)}`, EXIT_REFUSED, answer.errcode);
}

/** What to do about an error the server answered, as a sentence to append (or ''). */
function hintFor(errcode: string | undefined, status: number): string {
  switch (errcode) {
    case 'M_MISSING_TOKEN':
    case 'M_UNKNOWN_TOKEN':
      return (
        ' Pass the admin token with --token, --token-file or POLYHOME_ADMIN_TOKEN: it is the server’s ADMIN_TOKEN, ' +
        'or the file DATA_DIR/admin-token the server wrote.'
      );
    case 'M_NOT_FOUND':
      return ' `polyhome-admin accounts list --search <part of the name>` finds a user ID; quote it whole (@name:server).';
    case 'M_LIMIT_EXCEEDED':
      return ' Wait a moment and try again.';
    default:
      return status === 404 && errcode === undefined ? ' Is this server’s version older than this CLI?' : '';
  }
}

/** The path segment of a user, room or device ID (`@` and `:` encoded). */
export function segment(id: string): string {
  return encodeURIComponent(id);
}
