// Device lists between accounts (issue 16): "a new device of alice on any of her homes reaches bob's client within
// 1 s while the homes are connected". Two built server processes (bench/lib/server.js) on scratch PostgreSQL
// databases, real libp2p on 127.0.0.1: alice on S1, bob and carol on S2, all three in one room. A sample: bob
// long-polls /sync on S2; alice logs in a new device on S1 (password login) and uploads its device keys; the
// figure is the time from the start of the login until bob's /sync names alice in device_lists.changed (the login's
// device.put already sends m.device_list_update), and from the start of the key upload until it names her again
// (the update carrying the keys, which bob's client then queries). Reference, in the same run: the same two
// figures for carol logging in on S2 (bob's own home: no federation), and a loopback HTTP round trip to S2.
import { performance } from 'node:perf_hooks';
import { encodeBase64, SecretKey, signBytes, signedBytes } from '@polyhome/identity';
import { inviteAndJoin, startServerPair } from '../lib/server-pair.js';
import { call, matrixClient, percentile, sleep } from '../lib/util.js';

export const description =
  "alice's new device on S1 to bob's /sync on S2 (device_lists.changed) p50/p95 vs bob's own home";

const SAMPLES = Number(process.env.BENCH_DEVICE_LIST_SAMPLES ?? 10);
const WARM_UP = 2;

/** Self-signed device keys of a device, as a client uploads them. */
function deviceKeys(userId, deviceId) {
  const key = SecretKey.generate();
  const content = {
    user_id: userId,
    device_id: deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: {
      [`curve25519:${deviceId}`]: encodeBase64(SecretKey.generate().publicKey),
      [`ed25519:${deviceId}`]: encodeBase64(key.publicKey),
    },
  };
  return {
    ...content,
    signatures: { [userId]: { [`ed25519:${deviceId}`]: encodeBase64(signBytes(signedBytes(content), key)) } },
  };
}

/** bob's /sync, long-polled from the current position: resolves at the time a response names `userId` as changed. */
function watch(bob, since, userId) {
  const state = { since };
  state.told = (async () => {
    for (;;) {
      const res = await bob.request('GET', `/sync?timeout=30000&since=${encodeURIComponent(state.since)}`);
      state.since = res.next_batch;
      if (res.device_lists?.changed?.includes(userId)) return performance.now();
    }
  })();
  return state;
}

/** One sample: `server` logs `userId` in on a new device and uploads its keys, while bob long-polls. */
async function sample(pair, bob, since, server, userId) {
  let watching = watch(bob, since, userId);
  await sleep(100); // the long-poll parked on S2
  const t0 = performance.now();
  const made = await pair.login(server, userId);
  const loginMs = performance.now() - t0;
  const toldAtLogin = (await watching.told) - t0;
  watching = watch(bob, watching.since, userId);
  await sleep(100);
  const t1 = performance.now();
  await matrixClient(server, made).request('POST', '/keys/upload', { device_keys: deviceKeys(userId, made.device_id) });
  const uploadMs = performance.now() - t1;
  const toldAtUpload = (await watching.told) - t1;
  return { since: watching.since, loginMs, toldAtLogin, uploadMs, toldAtUpload };
}

function summary(samples, field) {
  const sorted = samples.map((s) => s[field]).sort((x, y) => x - y);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
}

export async function run(ctx) {
  const pair = await startServerPair(ctx, 'dl');
  try {
    const { s1, s2 } = pair;
    const alice = await pair.host(s1, 'alice');
    const bob = await pair.host(s2, 'bob');
    const carol = await pair.host(s2, 'carol');
    const [aliceId, carolId] = [alice.userId, carol.userId];

    ctx.progress('alice makes a room on S1; bob and carol join from S2');
    const { room_id: roomId } = await alice.request('POST', '/createRoom', { preset: 'private_chat' });
    await inviteAndJoin(alice, roomId, [bob, carol]);
    let since = (await bob.request('GET', '/sync?timeout=0')).next_batch;

    const remote = [];
    const local = [];
    for (let i = 0; i < WARM_UP + SAMPLES; i++) {
      const a = await sample(pair, bob, since, s1, aliceId);
      const c = await sample(pair, bob, a.since, s2, carolId);
      since = c.since;
      if (i >= WARM_UP) {
        remote.push(a);
        local.push(c);
      }
      ctx.progress(
        `sample ${i + 1}/${WARM_UP + SAMPLES}: alice ${a.toldAtLogin.toFixed(0)} / ${a.toldAtUpload.toFixed(0)} ms, carol ${c.toldAtLogin.toFixed(0)} / ${c.toldAtUpload.toFixed(0)} ms`,
      );
    }
    const rtts = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await call(`${s2.url}/_matrix/client/versions`, 'GET');
      rtts.push(performance.now() - t0);
    }
    rtts.sort((x, y) => x - y);

    const fmt = ({ p50, p95 }) => `p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms`;
    const loginRemote = summary(remote, 'toldAtLogin');
    const uploadRemote = summary(remote, 'toldAtUpload');
    const loginLocal = summary(local, 'toldAtLogin');
    const uploadLocal = summary(local, 'toldAtUpload');
    const rtt = `loopback GET /versions on S2 p50 ${percentile(rtts, 50).toFixed(2)} ms`;
    return [
      {
        figure: 'device_list_login_s1_to_bob_s2.p50_ms',
        value: loginRemote.p50,
        unit: 'ms',
        reference: `carol's login on S2 (bob's home) to bob's /sync ${fmt(loginLocal)}; the login request alone p50 ${summary(remote, 'loginMs').p50.toFixed(0)} ms; ${rtt}`,
      },
      {
        figure: 'device_list_login_s1_to_bob_s2.p95_ms',
        value: loginRemote.p95,
        unit: 'ms',
        reference: `${SAMPLES} samples after ${WARM_UP} warm-up`,
      },
      {
        figure: 'device_list_keys_s1_to_bob_s2.p50_ms',
        value: uploadRemote.p50,
        unit: 'ms',
        reference: `carol's key upload on S2 to bob's /sync ${fmt(uploadLocal)}; the upload request alone p50 ${summary(remote, 'uploadMs').p50.toFixed(0)} ms`,
      },
      {
        figure: 'device_list_keys_s1_to_bob_s2.p95_ms',
        value: uploadRemote.p95,
        unit: 'ms',
        reference: `${SAMPLES} samples after ${WARM_UP} warm-up`,
      },
    ];
  } finally {
    await pair.stop();
  }
}
