// Rooms across homes (issue 15): three real Homes on libp2p over TCP (127.0.0.1) with PostgreSQL stores, built
// libraries. alice on a server home S1 and a laptop (client home), bob on a server home S2, in one room.
// - message: alice's event made on S1 until it is accepted on S2 (engine send → federation /send → S2's accept
//   pipeline), p50 and p99, beside the libp2p ping between S1 and S2 in the same run;
// - catch-up: the laptop is stopped while S1 takes BENCH_ROOM_CATCH_UP events, then restarted: events/s from
//   its start to holding them all (S1's outbox delivering in /send batches of 50), beside the rate of verifying
//   the same events' signatures alone in the same run.
import { performance } from 'node:perf_hooks';
import { addHome, createAccountDocument, SecretKey } from '@polyhome/identity';
import { verifyPduSignatures } from '@polyhome/rooms';
import { benchHome } from '../lib/accounts.js';
import { postgresReachable } from '../lib/pg.js';
import { openRoomHome as openHome } from '../lib/room-home.js';
import { percentile, until } from '../lib/util.js';

export const description = 'room message S1→S2 p50/p99 vs ping; catch-up of missed events by a returning laptop';

const MESSAGES = Number(process.env.BENCH_ROOM_MESSAGES ?? 200);
const CATCH_UP = Number(process.env.BENCH_ROOM_CATCH_UP ?? 2000);
/** Bound on the laptop's catch-up (default 10 minutes, or 100 ms per event when more). */
const CATCH_UP_TIMEOUT_MS = Number(process.env.BENCH_ROOM_CATCH_UP_TIMEOUT_MS ?? Math.max(600_000, CATCH_UP * 100));

export async function run(ctx) {
  const reachable = await postgresReachable();
  if (!reachable.ok) throw new Error(`PostgreSQL is not reachable (${reachable.error}); start it and run again.`);
  const s1Key = benchHome(`rooms:s1:${process.pid}`, 'server');
  const laptopKey = benchHome(`rooms:laptop:${process.pid}`, 'client');
  const s2Key = benchHome(`rooms:s2:${process.pid}`, 'server');
  const aliceRoot = SecretKey.generate();
  const aliceDocument = addHome(
    createAccountDocument({ localpart: 'alice', rootKey: aliceRoot, home: s1Key.home }),
    laptopKey.home,
    aliceRoot,
  );
  const bobDocument = createAccountDocument({ localpart: 'bob', rootKey: SecretKey.generate(), home: s2Key.home });
  const serverOf = (document) => document.user_id.slice(document.user_id.indexOf(':') + 1);
  const A = { serverName: serverOf(aliceDocument), userId: aliceDocument.user_id, deviceId: 'BENCH' };
  const B = { serverName: serverOf(bobDocument), userId: bobDocument.user_id, deviceId: 'BENCH' };

  ctx.progress('starting three homes on PostgreSQL');
  let [s1, laptop, s2] = await Promise.all([
    openHome('rooms_s1', s1Key),
    openHome('rooms_laptop', laptopKey),
    openHome('rooms_s2', s2Key),
  ]);
  const databases = [s1.database, laptop.database, s2.database];
  try {
    await s1.replica.hostAccount(aliceDocument, { custody: 'self' });
    await laptop.replica.hostAccount(aliceDocument, { custody: 'self' });
    await s2.replica.hostAccount(bobDocument, { custody: 'self' });
    // As the DHT would give it (its lookups have their own bench).
    await s1.rooms.putForeignDocument(B.serverName, bobDocument.seq, JSON.stringify(bobDocument));
    await Promise.all([s1.home.start(), laptop.home.start(), s2.home.start()]);
    await laptop.home.host.dial(s1.home.host.getMultiaddrs()[0]);
    await s2.home.host.dial(s1.home.host.getMultiaddrs()[0]);
    await laptop.home.host.dial(s2.home.host.getMultiaddrs()[0]);

    const { roomId } = await s1.home.rooms.createRoom(A, {
      preset: 'private_chat',
      invite: [B.userId],
      initialState: [],
      isDirect: false,
    });
    await until(async () => {
      try {
        await s2.home.rooms.membership(B, roomId, { action: 'join' });
        return true;
      } catch {
        return false;
      }
    }, 'bob to join (once the invite reached S2)');

    ctx.progress(`message S1 → S2 x${MESSAGES}`);
    const latencies = [];
    const sends = [];
    for (let i = 0; i < MESSAGES + 20; i++) {
      const t0 = performance.now();
      const { eventId } = await s1.home.rooms.send(A, roomId, { type: 'm.room.message', content: { body: `m${i}` } });
      const sent = performance.now() - t0;
      await until(async () => (await s2.rooms.hasEvents([eventId])).has(eventId), 'a message on S2', 60_000);
      if (i >= 20) {
        latencies.push(performance.now() - t0);
        sends.push(sent);
      }
    }
    latencies.sort((x, y) => x - y);
    sends.sort((x, y) => x - y);
    const pings = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await s1.home.host.services.ping.ping(s2.home.host.peerId);
      pings.push(performance.now() - t0);
    }
    pings.sort((x, y) => x - y);

    ctx.progress(`catch-up: the laptop away while S1 takes ${CATCH_UP} events`);
    const laptopDb = laptop.database;
    await laptop.stop();
    let last = '';
    const pdus = [];
    for (let i = 0; i < CATCH_UP; i++) {
      ({ eventId: last } = await s1.home.rooms.send(A, roomId, { type: 'm.room.message', content: { body: `c${i}` } }));
      if (i % 500 === 499) ctx.progress(`  ${i + 1} events on S1`);
    }
    const missedEvents = (await s1.rooms.eventsAfter(0, CATCH_UP + 1000)).slice(-CATCH_UP);
    for (const event of missedEvents) pdus.push(event.pdu);
    const missed = missedEvents.map((e) => e.eventId);
    if (missed.at(-1) !== last) throw new Error('the events read back from S1 do not end with the last one sent');
    const started = performance.now();
    laptop = await openHome('rooms_laptop', laptopKey, laptopDb);
    await laptop.home.start();
    await laptop.home.host.dial(s1.home.host.getMultiaddrs()[0]);
    let reported = performance.now();
    await until(
      async () => {
        if (performance.now() - reported > 10_000) {
          reported = performance.now();
          ctx.progress(`  the laptop holds ${(await laptop.rooms.hasEvents(missed)).size}/${CATCH_UP}`);
        }
        return (await laptop.rooms.hasEvents([last])).has(last);
      },
      'the laptop to catch up',
      CATCH_UP_TIMEOUT_MS,
    );
    const catchUpSeconds = (performance.now() - started) / 1000;

    const key = s1Key.secretKey.publicKey;
    const t0 = performance.now();
    for (const pdu of pdus) {
      const result = verifyPduSignatures('11', pdu, () => key);
      if (!result.ok) throw new Error(`a bench event did not verify: ${result.message}`);
    }
    const verifyRate = pdus.length / ((performance.now() - t0) / 1000);

    const pingRef = `libp2p ping S1→S2 p50 ${percentile(pings, 50).toFixed(2)} ms`;
    return [
      {
        figure: 'room_message_s1_to_s2.p50_ms',
        value: percentile(latencies, 50),
        unit: 'ms',
        reference: `${pingRef}; the send on S1 alone p50 ${percentile(sends, 50).toFixed(1)} ms`,
      },
      {
        figure: 'room_message_s1_to_s2.p99_ms',
        value: percentile(latencies, 99),
        unit: 'ms',
        reference: `ping p99 ${percentile(pings, 99).toFixed(2)} ms`,
      },
      {
        figure: 'room_catch_up.events_per_s',
        value: CATCH_UP / catchUpSeconds,
        unit: 'events/s',
        reference: `verifying the same ${CATCH_UP} events' signatures alone: ${verifyRate.toFixed(0)} events/s`,
      },
      {
        figure: 'room_catch_up.seconds',
        value: catchUpSeconds,
        unit: 's',
        reference: `${CATCH_UP} events, from the laptop's start to holding them all`,
      },
    ];
  } finally {
    await Promise.allSettled([s1.stop(), laptop.stop(), s2.stop()]);
    await Promise.allSettled(databases.map((d) => d.drop()));
  }
}
