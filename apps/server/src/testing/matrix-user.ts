// Test helper: a Matrix user on a listening test server, made through the admin API and logged in with its
// password, for tests that then drive the client API (with matrix-js-sdk or fetch).
import type { AddressInfo } from 'node:net';
import { ClientEvent, MatrixError, SyncState, type MatrixClient } from 'matrix-js-sdk';
import type { TestServer } from './server-harness.js';

/** A hosted account with one logged-in device. */
export interface TestMatrixUser {
  /** `http://127.0.0.1:<port>` of the server. */
  baseUrl: string;
  userId: string;
  serverName: string;
  accessToken: string;
  deviceId: string;
}

async function post(url: string, body: unknown, bearer?: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(bearer === undefined ? {} : { Authorization: `Bearer ${bearer}` }),
    },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

/** Hosts `localpart` on the server (already listening) and logs it in with `m.login.password`. */
export async function hostedUser(
  server: TestServer,
  adminToken: string,
  localpart: string,
  password: string,
): Promise<TestMatrixUser> {
  const { port } = server.app.getHttpServer().address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const account = await post(`${baseUrl}/admin/v1/accounts`, { localpart, password }, adminToken);
  const userId = account['user_id'] as string;
  const login = await post(`${baseUrl}/_matrix/client/v3/login`, {
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: userId },
    password,
  });
  return {
    baseUrl,
    userId,
    serverName: account['server_name'] as string,
    accessToken: login['access_token'] as string,
    deviceId: login['device_id'] as string,
  };
}

/**
 * Starts a matrix-js-sdk client and resolves once its sync state is PREPARED; rejects after three sync errors
 * (a client that keeps failing at start-up). Resolves with the errors seen before PREPARED, for the caller to
 * check (none is expected).
 */
export async function startUntilPrepared(client: MatrixClient, initialSyncLimit: number): Promise<string[]> {
  const failures: string[] = [];
  const prepared = new Promise<void>((resolve, reject) => {
    client.on(ClientEvent.Sync, (state: SyncState, _prev: SyncState | null, data?: { error?: Error }) => {
      if (state === SyncState.Prepared) resolve();
      if (state === SyncState.Error) {
        failures.push(String(data?.error));
        if (failures.length >= 3) reject(new Error(`sync keeps failing: ${failures.join('; ')}`));
      }
    });
  });
  await client.startClient({ initialSyncLimit });
  await prepared;
  return failures;
}

/** The MatrixError a matrix-js-sdk request rejects with; throws when it does not reject, or rejects otherwise. */
export async function refusal(promise: Promise<unknown>): Promise<MatrixError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof MatrixError) return err;
    throw err;
  }
  throw new Error('expected the request to be refused');
}
