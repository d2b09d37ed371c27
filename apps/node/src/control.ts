// The control API of a running node: the CLI's commands reach the process that holds the database.
// HTTP on 127.0.0.1 (a port the OS picks), `POST /v1/<command>` with a JSON body of arguments and
// `Authorization: Bearer <secret>`. The URL, the secret and the pid are in `<data dir>/control.json`, mode
// 0600, written when the node is ready and removed when it stops: whoever can read the data directory's
// keys may drive the node, nobody else.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { rename, rm, writeFile, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataDirPaths } from './data-dir.js';
import { CliError, EXIT_FAILURE, storageProblem } from './errors.js';

/** Largest request body of the control API. */
const MAX_BODY_BYTES = 64 * 1024;
/** Time a command may take through the control API (an enrollment dials a server: up to 10 s). */
const CALL_TIMEOUT_MS = 60_000;

/** A command the control API runs: its arguments as JSON in, its result as JSON out. */
export type ControlHandler = (args: Record<string, unknown>) => Promise<unknown>;

/** What `control.json` holds. */
interface ControlFile {
  url: string;
  token: string;
  pid: number;
}

/** The running control API. */
export interface ControlServer {
  url: string;
  close(): Promise<void>;
}

/** Serves the handlers on 127.0.0.1 and writes `control.json`; close() stops serving and removes the file. */
export async function startControlServer(
  paths: DataDirPaths,
  handlers: Record<string, ControlHandler>,
): Promise<ControlServer> {
  const token = randomBytes(32).toString('base64url');
  const expected = Buffer.from(`Bearer ${token}`);
  const server = createServer((req, res) => {
    void serve(req, res, expected, handlers, paths.dir);
  });
  // Loaded here, by the running node only: the CLI's side (callControl) should not load @polyhome/home.
  const { hardenHttpServer } = await import('@polyhome/home');
  hardenHttpServer(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const file: ControlFile = { url, token, pid: process.pid };
  const temp = `${paths.control}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(file), { mode: 0o600 });
  await rename(temp, paths.control);
  return {
    url,
    close: async () => {
      await rm(paths.control, { force: true });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function serve(
  req: IncomingMessage,
  res: ServerResponse,
  expected: Buffer,
  handlers: Record<string, ControlHandler>,
  dataDir: string,
): Promise<void> {
  const reply = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const auth = Buffer.from(req.headers.authorization ?? '');
  if (auth.length !== expected.length || !timingSafeEqual(auth, expected)) {
    reply(401, { error: 'Missing or wrong control token (see control.json in the data directory).' });
    return;
  }
  const command = /^\/v1\/([a-z-]+(?:\.[a-z-]+)?)$/.exec(req.url ?? '')?.[1];
  const handler = command === undefined ? undefined : handlers[command];
  if (req.method !== 'POST' || handler === undefined) {
    reply(404, { error: `Unknown control command ${req.method ?? ''} ${req.url ?? ''}.` });
    return;
  }
  let args: Record<string, unknown>;
  try {
    args = await readJson(req);
  } catch (err) {
    reply(400, { error: (err as Error).message });
    return;
  }
  try {
    reply(200, { result: await handler(args) });
  } catch (err) {
    const known = err instanceof CliError ? err : storageProblem(err, dataDir);
    if (known !== undefined) reply(400, { error: known.message, exit_code: known.exitCode });
    else reply(500, { error: (err as Error).message ?? String(err), exit_code: EXIT_FAILURE });
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error('Control request too large.');
    chunks.push(chunk);
  }
  const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('Expected a JSON object.');
  return value as Record<string, unknown>;
}

/** The control file of a live node, or undefined when none runs (a file left by a killed node is ignored). */
async function liveControl(paths: DataDirPaths): Promise<ControlFile | undefined> {
  let file: ControlFile;
  try {
    file = JSON.parse(await readFile(paths.control, 'utf8')) as ControlFile;
  } catch {
    return undefined;
  }
  if (typeof file.pid !== 'number' || typeof file.url !== 'string' || typeof file.token !== 'string') return undefined;
  try {
    process.kill(file.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return file;
}

/** Whether a node runs on the data directory and answers on its control API. */
export async function controlAvailable(paths: DataDirPaths): Promise<boolean> {
  return (await liveControl(paths)) !== undefined;
}

/**
 * Runs a command in the node running on the data directory. Returns `{ ran: false }` when no node runs there,
 * so the caller opens the directory itself; throws CliError with the node's message when the command fails.
 */
export async function callControl(
  paths: DataDirPaths,
  command: string,
  args: Record<string, unknown>,
): Promise<{ ran: false } | { ran: true; result: unknown }> {
  const file = await liveControl(paths);
  if (file === undefined) return { ran: false };
  let response: Response;
  try {
    response = await fetch(`${file.url}/v1/${command}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${file.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(args),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  } catch (err) {
    throw new CliError(
      `The node running on ${paths.dir} (pid ${file.pid}) does not answer on ${file.url}: ${(err as Error).message}. Wait for it to finish starting, or stop it.`,
    );
  }
  const body = (await response.json().catch(() => ({}))) as { result?: unknown; error?: string; exit_code?: number };
  if (!response.ok) {
    throw new CliError(body.error ?? `The node answered ${response.status}.`, body.exit_code ?? EXIT_FAILURE);
  }
  return { ran: true, result: body.result };
}
