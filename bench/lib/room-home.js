// A Home with rooms as the room benches run it: a real libp2p host over TCP on 127.0.0.1, its replica and room
// stores on a PostgreSQL scratch database (bench/lib/pg.js) or embedded PGlite, an in-process queue.
import { Home } from '@polyhome/home';
import { createInProcessQueue } from '@polyhome/queue';
import { openStorage, SqlReplicaStore, SqlRoomStore } from '@polyhome/storage';
import { scratchDatabase } from './pg.js';

/** BENCH_HOME_LOG=debug|info|warn prints the homes' log lines of that level and above to stderr. */
const LEVELS = ['debug', 'info', 'warn', 'error'];
const LOG_FROM = LEVELS.indexOf(process.env.BENCH_HOME_LOG ?? 'none');

function benchLogger(label) {
  const logger = {};
  for (const [i, level] of LEVELS.entries()) {
    logger[level] =
      LOG_FROM < 0 || i < LOG_FROM
        ? () => undefined
        : (fields, message) =>
            process.stderr.write(`    [${label} ${level}] ${message ?? ''} ${JSON.stringify(fields ?? {})}\n`);
  }
  return logger;
}

export const ROOM_HOME_INIT = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  announceEveryMs: 60 * 60 * 1000,
  federation: { minBackoffMs: 200, maxBackoffMs: 2_000 },
};

/**
 * Opens a home with `fixture.secretKey` on a new scratch database named from `label` (or on `existing`, a database
 * it had before); `options.listen` and `options.poolSize` override the defaults; `options.embeddedDir` puts the
 * stores on embedded PGlite in that directory instead (as a client home runs by default). Returns { home, rooms,
 * replica, database, stop() }; the database is left for the caller to drop. `options.migrationsRun: false` opens a
 * database copied from a migrated template as it is (a pool of one cannot take the migration lock and migrate).
 */
export async function openRoomHome(label, fixture, existing, options = {}) {
  const embedded = options.embeddedDir !== undefined;
  const database = embedded ? undefined : (existing ?? (await scratchDatabase(label)));
  const storage = embedded
    ? await openStorage({ dataDir: options.embeddedDir })
    : await openStorage({
        databaseUrl: database.url,
        poolSize: options.poolSize,
        migrationsRun: options.migrationsRun,
      });
  const replica = new SqlReplicaStore(storage.dataSource);
  const rooms = new SqlRoomStore(storage.dataSource);
  const queue = createInProcessQueue();
  const init = options.listen === undefined ? ROOM_HOME_INIT : { ...ROOM_HOME_INIT, listen: options.listen };
  const logger = benchLogger(label);
  const home = await Home.create({ nodeKey: fixture.secretKey, store: replica, queue, rooms, logger }, init);
  return {
    home,
    rooms,
    replica,
    database,
    async stop() {
      await home.stop();
      await queue.close();
      await storage.close();
    },
  };
}
