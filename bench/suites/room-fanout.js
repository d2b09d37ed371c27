// Fan-out of one room (issue 15): "fan-out throughput of one room with 20 accounts on 40 homes, in events/s, beside
// the ingest figure". Each account u0..u19 has a server home and a client home (40 real Homes in this process:
// libp2p over TCP on 127.0.0.1; the server homes' replica and room stores on PostgreSQL scratch databases copied
// from one migrated template, pools of 2 for server homes and of 1 for client homes, to stay within the shared
// server's 100 connections; BENCH_FANOUT_CLIENT_STORE=pglite puts the client homes on embedded PGlite instead, as
// a client home runs by default, but 20 of them in this one process overload its event loop on 2 cores); every home knows the others' documents and addresses (as the DHT would give them). u0 makes the room
// on its server home and invites the others, who join from their server homes; their client homes take the room in
// from them. Then u0 sends BENCH_FANOUT_EVENTS messages from its server home: the figure is events/s from the
// first send until every one of the 40 homes holds every event (u0's server home sends each to the 39 others; each
// server home also relays it to its account's client home). Reference, in the same run: the same events taken in
// by one fresh home alone (engine ingest, the accept pipeline on PostgreSQL, one after another), and u0's sending
// alone.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { addHome, createAccountDocument, SecretKey } from '@polyhome/identity';
import { rememberPeerAddresses } from '@polyhome/p2p';
import { openStorage } from '@polyhome/storage';
import { benchHome } from '../lib/accounts.js';
import { freeConnections, postgresReachable, scratchDatabase } from '../lib/pg.js';
import { openRoomHome } from '../lib/room-home.js';
import { eventually, sleep, until } from '../lib/util.js';

export const description =
  'one room, 20 accounts on 40 homes (server + client each): events/s until all homes hold all, vs one-home ingest';

const ACCOUNTS = Number(process.env.BENCH_FANOUT_ACCOUNTS ?? 20);
const EVENTS = Number(process.env.BENCH_FANOUT_EVENTS ?? 500);
/** PostgreSQL connections per home (a pool each). */
const POOL = Number(process.env.BENCH_FANOUT_POOL ?? 2);
/** Where the client homes keep their stores: embedded PGlite, as a client home does by default, or `postgres`. */
const CLIENT_STORE = process.env.BENCH_FANOUT_CLIENT_STORE ?? 'postgres';
/** PostgreSQL connections per client home when they are on PostgreSQL. */
const CLIENT_POOL = Number(process.env.BENCH_FANOUT_CLIENT_POOL ?? 1);
/** Bound on the wait for every home to hold every event. */
const TIMEOUT_MS = Number(process.env.BENCH_FANOUT_TIMEOUT_MS ?? 900_000);
/** Pause after the last join before the first message. */
const SETTLE_MS = Number(process.env.BENCH_FANOUT_SETTLE_MS ?? 0);
/** Homes opened at once. */
const OPENING = 4;

/** `fn(item, index)` over `items`, `size` at a time; the results in order. */
async function inBatches(items, size, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += size) {
    out.push(...(await Promise.all(items.slice(i, i + size).map((item, j) => fn(item, i + j)))));
  }
  return out;
}

/** How many of `ids` each home holds. */
async function heldCounts(homes, ids) {
  return Promise.all(homes.map(async (h) => (await h.rooms.hasEvents(ids)).size));
}

export async function run(ctx) {
  Error.stackTraceLimit = 40; // a failure inside the homes names its caller
  // A storage error in a home's background work (a PostgreSQL connect timing out under load) escapes as an
  // unhandled rejection, which would end the process: counted and printed beside the figures instead.
  const escaped = [];
  const onEscaped = (err) => {
    escaped.push(err);
    ctx.progress(`unhandled error in a home: ${err?.stack ?? err}`);
  };
  process.on('unhandledRejection', onEscaped);
  // The same error thrown from pg-pool's connect timer (a callback rethrowing it) would end the process too.
  process.on('uncaughtException', onEscaped);
  const reachable = await postgresReachable();
  if (!reachable.ok) throw new Error(`PostgreSQL is not reachable (${reachable.error}); start it and run again.`);
  const homeCount = 2 * ACCOUNTS;
  const needed = (ACCOUNTS + 1) * POOL + (CLIENT_STORE === 'pglite' ? 0 : ACCOUNTS * CLIENT_POOL) + 2;
  const free = await freeConnections();
  if (free < needed) {
    throw new Error(`PostgreSQL accepts ${free} more connections; the homes need ${needed}`);
  }
  const databases = [];
  const dirs = [];
  const homes = [];
  try {
    ctx.progress('migrating a template database');
    const template = await scratchDatabase('fanout_tpl');
    databases.push(template);
    await (await openStorage({ databaseUrl: template.url, poolSize: 2 })).close();

    // Keys and documents; the homes' addresses go into each other's peer stores once they listen (as the DHT
    // would give them).
    const fixtures = [];
    for (let i = 0; i < homeCount; i++)
      fixtures.push(benchHome(`fanout:${i}:${process.pid}`, i % 2 === 0 ? 'server' : 'client'));
    const accounts = [];
    for (let a = 0; a < ACCOUNTS; a++) {
      const rootKey = SecretKey.generate();
      const [server, client] = [fixtures[2 * a], fixtures[2 * a + 1]];
      const document = addHome(
        createAccountDocument({ localpart: `u${a}`, rootKey, home: server.home }),
        client.home,
        rootKey,
      );
      const serverName = document.user_id.slice(document.user_id.indexOf(':') + 1);
      accounts.push({ document, actor: { serverName, userId: document.user_id, deviceId: 'BENCH' } });
    }

    ctx.progress(
      `opening ${homeCount} homes (PostgreSQL pools: ${POOL} per server home, ${CLIENT_POOL} per client home)`,
    );
    const opened = await inBatches(fixtures, OPENING, async (fixture, j) => {
      const options = { poolSize: j % 2 === 1 ? CLIENT_POOL : POOL, migrationsRun: false };
      let database;
      if (j % 2 === 1 && CLIENT_STORE === 'pglite') {
        options.embeddedDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-fanout-'));
        dirs.push(options.embeddedDir);
      } else {
        database = await scratchDatabase(`fanout_${j}`, { template: template.name });
        databases.push(database);
      }
      const h = await openRoomHome(`fanout_${j}`, fixture, database, options);
      homes.push(h);
      return h;
    });
    await inBatches(opened, OPENING, async (h, j) => {
      const own = Math.floor(j / 2);
      await h.replica.hostAccount(accounts[own].document, { custody: 'self' });
      for (const [a, { document, actor }] of accounts.entries()) {
        if (a !== own) await h.rooms.putForeignDocument(actor.serverName, document.seq, JSON.stringify(document));
      }
      for (const other of opened) {
        if (other !== h)
          await rememberPeerAddresses(h.home.host, other.home.host.peerId.toString(), other.home.addrs());
      }
      await h.home.start();
    });
    // Server home of account a: opened[2a]; its client home: opened[2a + 1], connected to it as a laptop is to
    // its server (the account's sync then carries its memberships, and the client home takes its rooms in).
    await inBatches(accounts, OPENING, (_, a) =>
      opened[2 * a + 1].home.host.dial(opened[2 * a].home.host.getMultiaddrs()[0]),
    );
    const origin = opened[0];
    const sender = accounts[0].actor;

    ctx.progress(`u0 makes the room and invites ${ACCOUNTS - 1}; they join from their server homes`);
    const { roomId } = await origin.home.rooms.createRoom(sender, {
      preset: 'private_chat',
      invite: accounts.slice(1).map((a) => a.actor.userId),
      initialState: [],
      isDirect: false,
    });
    for (let a = 1; a < ACCOUNTS; a++) {
      await eventually(
        () => opened[2 * a].home.rooms.membership(accounts[a].actor, roomId, { action: 'join' }, [sender.serverName]),
        `${accounts[a].actor.userId} to join`,
      );
      if (a % 5 === 0) ctx.progress(`  ${a}/${ACCOUNTS - 1} joined`);
    }
    // The first message follows the last join at once (BENCH_FANOUT_SETTLE_MS pauses first): u0's home may make it
    // before the joiner's join reaches it, and sends it on to the joiner's homes once the join comes (see
    // docs/decisions.md, "Events concurrent with a join reach the joiner").
    await sleep(SETTLE_MS);
    const setUp = performance.now();
    const { eventId: ready } = await origin.home.rooms.send(sender, roomId, {
      type: 'm.room.message',
      content: { body: 'ready' },
    });
    await until(
      async () => (await heldCounts(opened, [ready])).every((n) => n === 1),
      'every home to hold a first message (client homes taking the room in)',
      Number(process.env.BENCH_FANOUT_READY_TIMEOUT_MS ?? 180_000),
      100,
    ).catch(async (err) => {
      const held = await heldCounts(opened, [ready]);
      const lacking = held.flatMap((n, j) =>
        n === 1 ? [] : [`${j % 2 === 0 ? 'server' : 'client'} home of u${j >> 1}`],
      );
      const members = await origin.home.rooms.joinedMembers(roomId);
      const holding = await Promise.all(opened.map((h) => h.home.rooms.holds(roomId)));
      const label = new Map(opened.map((h, j) => [h.home.host.peerId.toString(), `home ${j}`]));
      const backlog = (await origin.home.federation.backlog()).map((b) => `${label.get(b.destination)}: ${b.pending}`);
      throw new Error(
        `${err.message}; not held by: ${lacking.join(', ')}; joined on u0's server home: ${members.join(', ')}; ` +
          `homes holding the room: ${holding.map(Number).join('')}; u0's outbox owes ${backlog.join(', ') || 'nothing'}`,
        { cause: err },
      );
    });
    ctx.progress(`every home holds the room (${((performance.now() - setUp) / 1000).toFixed(1)} s after the joins)`);

    ctx.progress(`u0 sends ${EVENTS} messages; waiting for all ${homeCount} homes to hold them`);
    const ids = [];
    const t0 = performance.now();
    for (let i = 0; i < EVENTS; i++) {
      const { eventId } = await origin.home.rooms.send(sender, roomId, {
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `fan-out ${i}` },
      });
      ids.push(eventId);
      if ((i + 1) % 100 === 0) ctx.progress(`  sent ${i + 1}/${EVENTS}`);
    }
    const sendSeconds = (performance.now() - t0) / 1000;
    const last = ids.at(-1);
    const pending = new Set(opened);
    let lastReport = performance.now();
    await until(
      async () => {
        for (const h of [...pending]) {
          if ((await h.rooms.hasEvents([last])).has(last) && (await h.rooms.hasEvents(ids)).size === ids.length) {
            pending.delete(h);
          }
        }
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          const counts = await heldCounts([...pending], ids);
          ctx.progress(
            `  ${homeCount - pending.size}/${homeCount} homes hold all; the others hold ${counts.join(',')}`,
          );
        }
        return pending.size === 0;
      },
      `every home to hold all ${EVENTS} events`,
      TIMEOUT_MS,
      50,
    ).catch(async (err) => {
      const counts = await heldCounts([...pending], ids);
      throw new Error(`${err.message}: ${pending.size} homes hold ${counts.join(',')} of ${EVENTS}`, { cause: err });
    });
    const fanOutSeconds = (performance.now() - t0) / 1000;

    ctx.progress(`reference: one fresh home takes in the room and the same ${EVENTS} events`);
    const events = await origin.rooms.eventsAfter(0, EVENTS + 10_000);
    const first = events.findIndex((e) => e.eventId === ids[0]);
    const database = await scratchDatabase('fanout_ref', { template: template.name });
    databases.push(database);
    const reference = await openRoomHome('fanout_ref', benchHome(`fanout:ref:${process.pid}`, 'server'), database, {
      poolSize: POOL,
      migrationsRun: false,
    });
    homes.push(reference);
    for (const { document, actor } of accounts) {
      await reference.rooms.putForeignDocument(actor.serverName, document.seq, JSON.stringify(document));
    }
    const ingest = async (event) => {
      const outcome = await reference.home.rooms.ingest(event.pdu);
      if (!outcome.ok) throw new Error(`the reference home refused ${event.eventId}: ${outcome.message}`);
    };
    for (const event of events.slice(0, first)) await ingest(event);
    const r0 = performance.now();
    for (const event of events.slice(first, first + EVENTS)) await ingest(event);
    const ingestRate = EVENTS / ((performance.now() - r0) / 1000);

    const rate = EVENTS / fanOutSeconds;
    const setting = `${ACCOUNTS} accounts on ${homeCount} homes, one sender, ${EVENTS} events`;
    return [
      {
        figure: 'room_fanout.events_per_s',
        value: rate,
        unit: 'events/s',
        reference: `one home's ingest of the same events ${ingestRate.toFixed(1)} events/s; u0 sending alone ${(EVENTS / sendSeconds).toFixed(1)} events/s; ${setting}`,
      },
      {
        figure: 'room_fanout.seconds',
        value: fanOutSeconds,
        unit: 's',
        reference: `from the first send until all ${homeCount} homes hold all; the sends took ${sendSeconds.toFixed(1)} s; ${escaped.length} unhandled errors in the homes`,
      },
      {
        figure: 'room_fanout.home_events_per_s',
        value: (rate * (homeCount - 1)) / 1,
        unit: 'events/s',
        reference: `events taken in by the ${homeCount - 1} other homes together; one home's ingest ${ingestRate.toFixed(1)} events/s`,
      },
      {
        figure: 'room_ingest.events_per_s',
        value: ingestRate,
        unit: 'events/s',
        reference: `reference: one fresh home (PostgreSQL, pool ${POOL}), engine ingest of the same ${EVENTS} events in order`,
      },
    ];
  } finally {
    process.off('unhandledRejection', onEscaped);
    process.off('uncaughtException', onEscaped);
    await Promise.allSettled(homes.map((h) => h.stop()));
    await Promise.allSettled(databases.map((d) => d.drop()));
    await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}
