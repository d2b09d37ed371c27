// A message from alice's client to bob's /sync across two servers (issue 15): "p50 <= 3x the same-run libp2p echo
// round trip plus one Matrix request". Two built server processes (bench/lib/server-pair.js) on scratch PostgreSQL
// databases, real libp2p on 127.0.0.1: alice hosted on S1 makes a room, invites bob hosted on S2, bob joins, all
// over the Matrix client-server API (plain fetch). A sample: bob long-polls `/sync?since=…&timeout=30000` on S2;
// alice `PUT /rooms/{room}/send/m.room.message/{txn}` on S1; the figure is the time from the start of the PUT
// until a /sync answer of bob's holds the message. Reference, in the same run: a raw libp2p echo of 1 KB on a new
// stream between two libp2p hosts in the bench process (the server processes cannot be asked to echo each other;
// S1's own round trip to S2, libp2p's connection monitor, is printed beside it, as is the bench's ping to S2's
// host) plus one Matrix request: the PUT send alone on S1 (the goal ratio), and GET /account/whoami on S1.
import { performance } from 'node:perf_hooks';
import { multiaddr } from '@multiformats/multiaddr';
import { SecretKey } from '@polyhome/identity';
import { createPolyhomeHost } from '@polyhome/p2p';
import { echoOnce, handleEcho } from '../lib/echo.js';
import { inviteAndJoin, startServerPair } from '../lib/server-pair.js';
import { percentile, sleep, timed } from '../lib/util.js';

export const description =
  "alice's message PUT on S1 to bob's /sync on S2 p50/p99 vs libp2p echo + one Matrix request (goal ratio <= 3)";

const SAMPLES = Number(process.env.BENCH_ROOM_LATENCY_SAMPLES ?? 200);
const WARM_UP = Number(process.env.BENCH_ROOM_LATENCY_WARM_UP ?? 20);
const REFERENCE_ROUNDS = 200;
/** Time given to bob's long-poll to be parked on S2 before alice sends. */
const PARK_MS = 30;

/** bob's /sync long-polled from `since`: resolves { at, since } when an answer holds a message with `body`. */
async function syncUntil(bob, roomId, since, body) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`bob's /sync did not show "${body}" within 120 s`);
    const res = await bob.request('GET', `/sync?timeout=30000&since=${encodeURIComponent(since)}`, undefined, 45_000);
    since = res.next_batch;
    const events = res.rooms?.join?.[roomId]?.timeline?.events ?? [];
    if (events.some((e) => e.type === 'm.room.message' && e.content?.body === body)) {
      return { at: performance.now(), since };
    }
  }
}

/** Raw libp2p echo (1 KB, new stream) between two hosts here, and ping from a host here to `peerAddr`. */
async function libp2pReferences(peerAddr, payload) {
  const hosts = await Promise.all(
    [0, 1].map(() => createPolyhomeHost({ nodeKey: SecretKey.generate(), listen: ['/ip4/127.0.0.1/tcp/0'] })),
  );
  const [caller, server] = hosts;
  try {
    await handleEcho(server);
    await caller.dial(server.getMultiaddrs()[0]);
    await timed(20, () => echoOnce(caller, server.peerId, payload));
    const echo = await timed(REFERENCE_ROUNDS, () => echoOnce(caller, server.peerId, payload));
    const target = multiaddr(peerAddr);
    const connection = await caller.dial(target);
    await timed(20, () => caller.services.ping.ping(connection.remotePeer));
    const ping = await timed(REFERENCE_ROUNDS, () => caller.services.ping.ping(connection.remotePeer));
    return { echo, ping };
  } finally {
    await Promise.allSettled(hosts.map((h) => h.stop()));
  }
}

export async function run(ctx) {
  const pair = await startServerPair(ctx, 'rl');
  try {
    const { s1, s2 } = pair;
    const alice = await pair.host(s1, 'alice');
    const bob = await pair.host(s2, 'bob');
    ctx.progress('alice makes a room on S1; bob joins from S2');
    const { room_id: roomId } = await alice.request('POST', '/createRoom', { preset: 'private_chat' });
    await inviteAndJoin(alice, roomId, [bob]);
    const room = encodeURIComponent(roomId);
    let since = (await bob.request('GET', '/sync?timeout=0')).next_batch;

    ctx.progress(`${WARM_UP} warm-up + ${SAMPLES} messages S1 → bob's /sync on S2`);
    const latencies = [];
    const puts = [];
    const afterPut = [];
    const started = Date.now();
    for (let i = 0; i < WARM_UP + SAMPLES; i++) {
      const body = `bench message ${i} ${started}`;
      const told = syncUntil(bob, roomId, since, body);
      await sleep(PARK_MS);
      const t0 = performance.now();
      await alice.request('PUT', `/rooms/${room}/send/m.room.message/bench-${started}-${i}`, {
        msgtype: 'm.text',
        body,
      });
      const put = performance.now() - t0;
      const answer = await told;
      since = answer.since;
      if (i >= WARM_UP) {
        latencies.push(answer.at - t0);
        puts.push(put);
        afterPut.push(answer.at - t0 - put);
      }
      if ((i + 1) % 50 === 0) ctx.progress(`  ${i + 1}/${WARM_UP + SAMPLES}`);
    }
    latencies.sort((x, y) => x - y);
    puts.sort((x, y) => x - y);
    afterPut.sort((x, y) => x - y);

    ctx.progress(`references: whoami on S1 x${REFERENCE_ROUNDS}, libp2p echo and ping x${REFERENCE_ROUNDS}`);
    const whoami = await timed(REFERENCE_ROUNDS, () => alice.request('GET', '/account/whoami'));
    // The event as federation carries it, for the echo's size.
    const payload = new TextEncoder().encode(JSON.stringify({ pdus: [{ content: { body: 'x'.repeat(900) } }] }));
    const { echo, ping } = await libp2pReferences(s2.p2pAddr, payload);
    const peers = await pair.admin(s1, 'GET', '/admin/v1/peers?limit=500');
    const s1ToS2 = peers.chunk?.find((p) => p.peer_id === s2.peerId)?.rtt_ms;

    const p50 = percentile(latencies, 50);
    const echo50 = percentile(echo, 50);
    const put50 = percentile(puts, 50);
    const who50 = percentile(whoami, 50);
    const refs =
      `libp2p echo (1 KB, new stream, two hosts in the bench process) p50 ${echo50.toFixed(2)} ms; ` +
      `PUT send alone on S1 p50 ${put50.toFixed(1)} ms; whoami on S1 p50 ${who50.toFixed(1)} ms; ` +
      `ping bench → S2's host p50 ${percentile(ping, 50).toFixed(2)} ms; ` +
      `S1's connection monitor RTT to S2 ${s1ToS2 === undefined ? 'n/a' : `${s1ToS2} ms`}`;
    return [
      { figure: 'room_message_put_to_sync.p50_ms', value: p50, unit: 'ms', reference: refs },
      {
        figure: 'room_message_put_to_sync.p99_ms',
        value: percentile(latencies, 99),
        unit: 'ms',
        reference: `${SAMPLES} samples after ${WARM_UP} warm-up; echo p99 ${percentile(echo, 99).toFixed(2)} ms, PUT send p99 ${percentile(puts, 99).toFixed(1)} ms`,
      },
      {
        figure: 'room_message_put_to_sync.goal_ratio',
        value: p50 / (echo50 + put50),
        unit: 'x',
        reference:
          `p50 / (echo p50 + PUT send p50), goal <= 3; ` +
          `with whoami as the Matrix request: ${(p50 / (echo50 + who50)).toFixed(2)}`,
      },
      {
        figure: 'room_message_put.p50_ms',
        value: put50,
        unit: 'ms',
        reference: `whoami on S1 p50 ${who50.toFixed(1)} ms`,
      },
      {
        figure: 'room_message_after_put.p50_ms',
        value: percentile(afterPut, 50),
        unit: 'ms',
        reference: `from the PUT's answer to bob's /sync answer (federation, S2's accept, /sync); echo p50 ${echo50.toFixed(2)} ms`,
      },
      { figure: 'libp2p_echo.p50_ms', value: echo50, unit: 'ms', reference: 'physical reference: 1 KB, new stream' },
    ];
  } finally {
    await pair.stop();
  }
}
