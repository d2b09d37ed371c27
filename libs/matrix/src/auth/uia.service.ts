import { Inject, Injectable } from '@nestjs/common';
import { UserInteractiveAuthRequired } from '../common/errors.js';
import { isRecord } from '../common/json.js';
import { randomToken } from '../common/random.js';
import { MATRIX_HOME_PORT, type MatrixHomePort } from '../port.js';
import type { MatrixSession } from './session.js';

/** How long a UIA session may take to complete. */
const UIA_SESSION_MS = 10 * 60 * 1000;
/** Open UIA sessions kept at most (oldest dropped first), so unauthenticated retries cannot grow memory. */
const MAX_UIA_SESSIONS = 10_000;

/**
 * User-interactive auth with the one stage this home offers, `m.login.password`. Sessions live in memory:
 * one started on this process must be finished on it, which is how clients use them (within seconds).
 */
@Injectable()
export class UiaService {
  private readonly sessions = new Map<string, { serverName: string; expires: number }>();

  constructor(@Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort) {}

  /** Returns when `auth` proves the user's password; throws a 401 carrying the flows otherwise. */
  async require(session: MatrixSession, auth: unknown): Promise<void> {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (s.expires <= now) this.sessions.delete(id);
    if (!isRecord(auth)) throw new UserInteractiveAuthRequired(this.start(session));
    const sessionId = typeof auth['session'] === 'string' ? auth['session'] : undefined;
    const open = sessionId === undefined ? undefined : this.sessions.get(sessionId);
    if (sessionId !== undefined && open?.serverName !== session.serverName) {
      throw new UserInteractiveAuthRequired(this.start(session), { errcode: 'M_FORBIDDEN', error: 'Unknown session.' });
    }
    const state = this.state(sessionId ?? this.newSession(session));
    if (auth['type'] !== 'm.login.password') {
      throw new UserInteractiveAuthRequired(state, {
        errcode: 'M_FORBIDDEN',
        error: 'Only m.login.password is offered.',
      });
    }
    const identifier = isRecord(auth['identifier']) ? auth['identifier'] : undefined;
    const user = typeof identifier?.['user'] === 'string' ? identifier['user'] : auth['user'];
    const password = auth['password'];
    const serverName =
      typeof password === 'string' && (user === session.userId || user === localpartOf(session.userId))
        ? await this.port.checkPassword(session.userId, password)
        : null;
    if (serverName !== session.serverName) {
      throw new UserInteractiveAuthRequired(state, { errcode: 'M_FORBIDDEN', error: 'Invalid password.' });
    }
    if (sessionId !== undefined) this.sessions.delete(sessionId);
  }

  private start(session: MatrixSession): Record<string, unknown> {
    return this.state(this.newSession(session));
  }

  private newSession(session: MatrixSession): string {
    const id = randomToken(18);
    if (this.sessions.size >= MAX_UIA_SESSIONS) {
      const oldest = this.sessions.keys().next();
      if (oldest.done !== true) this.sessions.delete(oldest.value);
    }
    this.sessions.set(id, { serverName: session.serverName, expires: Date.now() + UIA_SESSION_MS });
    return id;
  }

  private state(sessionId: string): Record<string, unknown> {
    return { flows: [{ stages: ['m.login.password'] }], params: {}, session: sessionId, completed: [] };
  }
}

function localpartOf(userId: string): string {
  return userId.slice(1, userId.indexOf(':'));
}
