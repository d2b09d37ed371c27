// Two built server processes (bench/lib/server.js) on scratch PostgreSQL databases, S2 bootstrapping from S1 over
// libp2p on 127.0.0.1, with hosted accounts logged in over the Matrix client-server API and rooms joined across.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { postgresReachable, scratchDatabase } from './pg.js';
import { startServer } from './server.js';
import { call, eventually, matrixClient, passwordLogin } from './util.js';

const ADMIN_TOKEN = 'bench-server-pair-admin-token-0123456789';
const PASSWORD = 'correct horse battery staple';

/**
 * Starts S1 and S2 (`label` names their scratch databases); returns { s1, s2, host(server, localpart), login(server,
 * userId), admin(server, method, route, body), stop() }: `host` makes an account with the admin API and returns a logged-in client of it.
 */
export async function startServerPair(ctx, label) {
  const reachable = await postgresReachable();
  if (!reachable.ok) throw new Error(`PostgreSQL is not reachable (${reachable.error}); start it and run again.`);
  const dirs = [];
  const databases = [];
  const servers = [];
  const stop = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
    await Promise.allSettled(databases.map((d) => d.drop()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    for (const i of [1, 2]) {
      dirs.push(await mkdtemp(path.join(os.tmpdir(), `polyhome-bench-${label}${i}-`)));
      databases.push(await scratchDatabase(`${label}_s${i}`));
    }
    const env = (i) => ({ DATA_DIR: dirs[i], DATABASE_URL: databases[i].url, ADMIN_TOKEN, ENROLLMENT_POLICY: 'open' });
    ctx.progress('starting S1 and S2 (built server, PostgreSQL)');
    const s1 = await startServer(env(0));
    servers.push(s1);
    const s2 = await startServer({ ...env(1), P2P_BOOTSTRAP: s1.p2pAddr });
    servers.push(s2);
    const login = (server, userId) => passwordLogin(server, userId, PASSWORD);
    return {
      s1,
      s2,
      login,
      admin: (server, method, route, body) => call(`${server.url}${route}`, method, body, ADMIN_TOKEN),
      async host(server, localpart) {
        const { user_id: userId } = await call(
          `${server.url}/admin/v1/accounts`,
          'POST',
          { localpart, password: PASSWORD },
          ADMIN_TOKEN,
        );
        return matrixClient(server, await login(server, userId));
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `creator` invites each client and each joins from its own server (retried while documents travel). */
export async function inviteAndJoin(creator, roomId, clients) {
  const room = encodeURIComponent(roomId);
  for (const who of clients) {
    // The invite needs the invitee's document, which reaches the creator's server through the DHT.
    await eventually(
      () => creator.request('POST', `/rooms/${room}/invite`, { user_id: who.userId }),
      `the invite of ${who.userId}`,
    );
    await eventually(() => who.request('POST', `/join/${room}`, {}), `${who.userId} to join`);
  }
}
