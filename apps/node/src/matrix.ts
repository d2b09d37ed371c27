// The Matrix client API of the client-side home: libs/matrix's module over this node's port, served on
// 127.0.0.1 only. Logins are by `m.login.token` (from `polyhome login-token`), or by password when a server home
// of the account set one (its verifier replicates; the node never sees the password).
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
import {
  bodyParserError,
  checkPasswordGuess,
  GuessBackoffError,
  hardenHttpServer,
  jsonDepthCheck,
  PasswordGuessLimiter,
  replicatedVerifier,
  type HomeAccounts,
} from '@polyhome/home';
import {
  MatrixClientApiModule,
  MatrixError,
  matrixHttp,
  skipMediaUploads,
  type MatrixClientApiOptions,
  type MatrixHomePort,
} from '@polyhome/matrix';
import type { HomeContext } from './context.js';
import { CliError } from './errors.js';

/** Largest JSON body the node's Matrix API accepts (as the server's). */
const MAX_BODY_BYTES = 256 * 1024;

/**
 * The node's side of the Matrix home port (the port itself is the Home's): no passwords, its user logs in
 * with `polyhome login-token`.
 */
export function nodeHomeAccounts(ctx: HomeContext): HomeAccounts {
  const { accounts, loginTokens: tokens } = ctx.repositories;
  // Wrong guesses per user ID, in this process (as the server counts them).
  const guesses = new PasswordGuessLimiter();
  const activeRow = async (userId: string) => {
    const serverName = /^@[^:]+:([0-9a-f]{64})$/.exec(userId)?.[1];
    const row = serverName === undefined ? undefined : await accounts.findByServerName(serverName);
    return row !== undefined && row.status === 'active' && row.userId === userId ? row : undefined;
  };
  return {
    // The verifier a server home replicated (`password.set`): a password set there logs in here too.
    checkPassword: async (userId, password) => {
      const row = await activeRow(userId);
      const verifier = row === undefined ? undefined : replicatedVerifier(await ctx.store.state(row.serverName));
      let right: boolean;
      try {
        right = await checkPasswordGuess(guesses, userId.slice(0, 255), password, verifier);
      } catch (err) {
        if (err instanceof GuessBackoffError) {
          throw new MatrixError('M_LIMIT_EXCEEDED', err.message, 429, { retry_after_ms: err.retryAfterMs });
        }
        throw err;
      }
      return right && row !== undefined ? row.serverName : null;
    },
    consumeLoginToken: async (token) => {
      const use = await tokens.consume(token);
      return use.ok ? use.serverName : null;
    },
    userIdOf: async (serverName) => {
      const row = await accounts.findByServerName(serverName);
      return row === undefined || row.status !== 'active' ? null : row.userId;
    },
    userIdsWithLocalpart: async (localpart) =>
      (await accounts.withLocalpart(localpart)).filter((r) => r.status === 'active').map((r) => r.userId),
    // Advertised only when an account held here has a verifier (a node's own accounts have none until a
    // server home of theirs sets a password).
    passwordLogin: async () => {
      // A node holds its person's accounts (usually one): reading each one's state is cheap.
      for (const row of await accounts.listByUserId()) {
        if (replicatedVerifier(await ctx.store.state(row.serverName)) !== undefined) return true;
      }
      return false;
    },
  };
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
  const parser = bodyParserError(exception);
  if (parser !== undefined) return [parser.status, parser.errcode, parser.error];
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status === 404 || status === 405) return [status, 'M_UNRECOGNIZED', 'Unrecognized request.'];
    if (status < 500) return [status, 'M_INVALID_PARAM', exception.message];
  }
  return [500, 'M_UNKNOWN', 'Internal error; see the node output.'];
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

/** Where and how the node serves its Matrix API. */
export interface MatrixApiOptions {
  /** Port on 127.0.0.1 (0: any free port). */
  port: number;
  /** Largest media upload in bytes. */
  mediaMaxBytes: number;
}

/** Serves the Matrix client API of the node on 127.0.0.1. */
export async function startMatrixApi(
  ctx: HomeContext,
  homePort: MatrixHomePort,
  { port, mediaMaxBytes }: MatrixApiOptions,
  report: (err: unknown) => void,
): Promise<MatrixApi> {
  const app: INestApplication = await NestFactory.create(
    NodeMatrixModule.forRoot({
      port: homePort,
      store: ctx.repositories.matrix,
      // Media in the node's PGlite; media of other homes (fetchRemote) comes with media over libp2p.
      media: { store: ctx.repositories.media, maxUploadBytes: mediaMaxBytes },
    }),
    { logger: false, bodyParser: false, abortOnError: false },
  );
  try {
    // Matrix web clients call from another origin (the spec's CORS headers), and some still use r0 paths.
    app.use(matrixHttp());
    // Media uploads are streamed by their routes, up to mediaMaxBytes.
    app.use(skipMediaUploads(express.json({ limit: MAX_BODY_BYTES, strict: true, verify: jsonDepthCheck() })));
    app.useGlobalFilters(new NodeHttpFilter(report));
    (app.getHttpAdapter().getInstance() as express.Express).disable('x-powered-by');
    hardenHttpServer(app.getHttpServer() as Server);
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
