// The logger this package writes to. Its argument order is pino's (fields first, then the message), so the
// server's pino logger is one as it is; the client node adapts its line output. Nothing here is swallowed
// without a line: a failure this package does not throw is logged with the peer, protocol and account.

/** One log method: structured fields (peer, protocol, account, err) and a message. */
export type P2pLogFn = (fields: Record<string, unknown>, msg: string) => void;

/** What the components of @polyhome/p2p log to (pino-compatible). */
export interface P2pLogger {
  /** Routine failures an operator rarely needs: a peer that hung up before our reply, a record that did not verify. */
  debug: P2pLogFn;
  /** Things worth knowing when asking why two homes do not sync: a session that could not open. */
  info: P2pLogFn;
  /** A failure that costs work or data until it is retried: a bootstrap peer down, a document change not carried out. */
  warn: P2pLogFn;
  /** A bug: something that should never throw did. */
  error: P2pLogFn;
}

/** A logger that drops everything: the default where a caller passes none. */
export const silentLogger: P2pLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** The fields of a caught error for a log line: its name and message (stacks only for bugs, by the caller). */
export function errorFields(error: unknown): { err: string; errName?: string } {
  if (error instanceof Error) return { err: error.message, errName: error.name };
  return { err: String(error) };
}
