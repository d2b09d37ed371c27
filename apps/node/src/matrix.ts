// The Matrix client API of the client-side home: libs/matrix's module over this node's port, served on
// 127.0.0.1 only. Logins are by `m.login.token` (from `polyhome login-token`): the node holds no passwords.
import type { Server } from 'node:http';
import {
  type ArgumentsHost,
  Catch,
  type DynamicModule,
  type ExceptionFilter,
  HttpException,
  type INestApplication,
  Module,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import express from 'express';
import { hashAndSignEvent, parseUserId, type MatrixEvent } from '@polyhome/identity';
import {
  MatrixClientApiModule,
  MatrixError,
  type MatrixAccountState,
  type MatrixClientApiOptions,
  type MatrixHomePort,
  type MatrixLocalChange,
  type MatrixRoomVersion,
} from '@polyhome/matrix';
import { AccountEntity, SqlLoginTokens, SqlMatrixStore } from '@polyhome/storage';
import { applyLocal } from './commands.js';
import type { HomeContext } from './context.js';
import { CliError } from './errors.js';

/** Largest JSON body the node's Matrix API accepts (as the server's). */
const MAX_BODY_BYTES = 256 * 1024;

/** Subscribes to the account changes the node sees (local ops and ops from other homes). */
export type ChangeSource = (listener: (serverName: string, keys: string[]) => void) => void;

/** The Matrix port of the client-side home. */
export class NodeMatrixPort implements MatrixHomePort {
  readonly #tokens: SqlLoginTokens;

  constructor(
    private readonly ctx: HomeContext,
    private readonly changes: ChangeSource,
  ) {
    this.#tokens = new SqlLoginTokens(ctx.storage.dataSource);
  }

  get homeId(): string {
    return this.ctx.peerId;
  }

  /** The client-side home keeps no password: its user logs in with `polyhome login-token`. */
  checkPassword(): Promise<string | null> {
    return Promise.resolve(null);
  }

  async consumeLoginToken(token: string): Promise<string | null> {
    const use = await this.#tokens.consume(token);
    return use.ok ? use.serverName : null;
  }

  async userIdOf(serverName: string): Promise<string | null> {
    const row = await this.ctx.storage.dataSource.getRepository(AccountEntity).findOneBy({ serverName });
    return row === null || row.status !== 'active' ? null : row.userId;
  }

  state(serverName: string): Promise<MatrixAccountState> {
    return this.ctx.store.state(serverName);
  }

  async applyLocal(serverName: string, changes: MatrixLocalChange[]): Promise<void> {
    try {
      await applyLocal(this.ctx, serverName, changes);
    } catch (err) {
      // A change the op validator refuses is the client's bad input, told in Matrix terms.
      if (err instanceof CliError) throw new MatrixError('M_BAD_JSON', err.message);
      throw err;
    }
  }

  onChanged(listener: (serverName: string, keys: string[]) => void): void {
    this.changes(listener);
  }

  signEvent(serverName: string, event: MatrixEvent, roomVersion: MatrixRoomVersion): Promise<MatrixEvent> {
    if (typeof event['sender'] !== 'string' || parseUserId(event['sender']).serverName !== serverName) {
      return Promise.reject(new Error('signEvent: sender is not of this account'));
    }
    return Promise.resolve(
      hashAndSignEvent(event, serverName, `ed25519:${this.ctx.peerId}`, this.ctx.nodeKey, roomVersion),
    );
  }
}

/** Answers what happens outside the Matrix controllers (bad JSON, too large, unknown path) as `{ errcode, error }`. */
@Catch()
class NodeHttpFilter implements ExceptionFilter {
  constructor(private readonly report: (err: unknown) => void) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<express.Response>();
    if (res.headersSent) return;
    const [status, errcode, error] = classify(exception);
    if (status >= 500) this.report(exception);
    res.status(status).json({ errcode, error });
  }
}

function classify(exception: unknown): [number, string, string] {
  if (exception instanceof MatrixError) return [exception.status, exception.errcode, exception.message];
  // body-parser's errors carry a `type`; Nest may hand them over wrapped in an HttpException's cause.
  const parser = (hasType(exception) ? exception : (exception as { cause?: unknown } | null)?.cause) as
    { type?: unknown; status?: unknown } | undefined;
  if (parser?.type === 'entity.parse.failed') return [400, 'M_NOT_JSON', 'The request body is not valid JSON.'];
  if (parser?.type === 'entity.too.large') return [413, 'M_TOO_LARGE', 'The request body is too large.'];
  if (typeof parser?.type === 'string' && typeof parser.status === 'number' && parser.status < 500) {
    return [parser.status, 'M_NOT_JSON', 'The request body must be UTF-8 JSON.'];
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status === 404 || status === 405) return [status, 'M_UNRECOGNIZED', 'Unrecognized request.'];
    if (status < 500) return [status, 'M_INVALID_PARAM', exception.message];
  }
  return [500, 'M_UNKNOWN', 'Internal error; see the node output.'];
}

function hasType(value: unknown): boolean {
  return typeof (value as { type?: unknown } | null)?.type === 'string';
}

@Module({})
class NodeMatrixModule {
  static forRoot(options: MatrixClientApiOptions): DynamicModule {
    return { module: NodeMatrixModule, imports: [MatrixClientApiModule.forRoot(options)] };
  }
}

/** A running Matrix client API. */
export interface MatrixApi {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  close(): Promise<void>;
}

/** Serves the Matrix client API of the node on 127.0.0.1:`port` (0: any free port). */
export async function startMatrixApi(
  ctx: HomeContext,
  changes: ChangeSource,
  port: number,
  report: (err: unknown) => void,
): Promise<MatrixApi> {
  const app: INestApplication = await NestFactory.create(
    NodeMatrixModule.forRoot({
      port: new NodeMatrixPort(ctx, changes),
      store: new SqlMatrixStore(ctx.storage.dataSource),
    }),
    { logger: false, bodyParser: false, abortOnError: false },
  );
  try {
    // Matrix web clients call from another origin; the API is on loopback only, so CORS adds no exposure.
    app.enableCors();
    app.use(express.json({ limit: MAX_BODY_BYTES, strict: true }));
    app.useGlobalFilters(new NodeHttpFilter(report));
    (app.getHttpAdapter().getInstance() as express.Express).disable('x-powered-by');
    await app.listen(port, '127.0.0.1');
  } catch (err) {
    await app.close().catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'EADDRINUSE'
        ? `Port ${port} on 127.0.0.1 is taken: choose another with --port (0 picks a free one).`
        : `Cannot serve the Matrix API on 127.0.0.1:${port}: ${(err as Error).message}`,
    );
  }
  const address = (app.getHttpServer() as Server).address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  return { url: `http://127.0.0.1:${actual}`, close: () => app.close() };
}
