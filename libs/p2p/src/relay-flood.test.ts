// A flood of relay reservations on 127.0.0.1 (bounded loops): strangers' requests are refused, one home's many
// requests hold one slot, and the relay still serves a home afterwards. The requests are raw circuit relay v2
// RESERVE messages on the hop protocol, as any peer can send them.
import { byteStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { generateKeyPair } from '@polyhome/identity';
import { afterEach, describe, expect, it } from 'vitest';
import { createPolyhomeHost, type PolyhomeHost, type PolyhomeHostInit } from './host.js';
import { isRelayedAddr, relayReservations } from './relay.js';
import { waitFor } from './testing/index.js';

const HOP = '/libp2p/circuit/relay/0.2.0/hop';
/** HopMessage { type: RESERVE }, length-prefixed. */
const RESERVE = Uint8Array.from([0x02, 0x08, 0x00]);
const STATUS_OK = 100;
const STATUS_PERMISSION_DENIED = 202;
const STRANGERS = 5;
const ATTEMPTS_EACH = 40;
const HOME_ATTEMPTS = 50;

const hosts: PolyhomeHost[] = [];

async function host(init: Partial<PolyhomeHostInit> = {}): Promise<PolyhomeHost> {
  const h = await createPolyhomeHost({
    nodeKey: generateKeyPair().secretKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
    connectionLimits: { maxStrangerConnectionsPerIp: 10_000 },
    autonat: false,
    ...init,
  });
  hosts.push(h);
  return h;
}

afterEach(async () => {
  await Promise.allSettled(hosts.splice(0).map(async (h) => h.stop()));
});

/**
 * One RESERVE from `from` to the relay: the status it answered, or `refused` when the relay closed the stream or
 * the connection instead (then the next request dials again).
 */
async function reserve(from: PolyhomeHost, relay: PolyhomeHost): Promise<number | 'refused'> {
  let body: Uint8Array;
  try {
    const stream = await from.dialProtocol(relay.peerId, HOP, { signal: AbortSignal.timeout(10_000) });
    const bytes = byteStream(stream);
    await bytes.write(RESERVE);
    let length = 0;
    for (let shift = 0, b = 0x80; (b & 0x80) !== 0; shift += 7) {
      b = (await bytes.read({ bytes: 1, signal: AbortSignal.timeout(10_000) })).subarray()[0]!;
      length |= (b & 0x7f) << shift;
    }
    body = (await bytes.read({ bytes: length, signal: AbortSignal.timeout(10_000) })).subarray();
    await stream.close().catch(() => undefined);
  } catch {
    return 'refused';
  }
  // HopMessage field 5 (status, varint): tag 0x28.
  for (let i = 0; i < body.length;) {
    const tag = body[i++]!;
    let value = 0;
    let shift = 0;
    if ((tag & 0x07) === 0) {
      for (let b = 0x80; (b & 0x80) !== 0; shift += 7) {
        b = body[i++]!;
        value |= (b & 0x7f) << shift;
      }
      if (tag === 0x28) return value;
    } else if ((tag & 0x07) === 2) {
      let len = 0;
      for (let b = 0x80; (b & 0x80) !== 0; shift += 7) {
        b = body[i++]!;
        len |= (b & 0x7f) << shift;
      }
      i += len;
    } else {
      throw new Error(`unexpected wire type in ${Buffer.from(body).toString('hex')}`);
    }
  }
  throw new Error(`no status in ${Buffer.from(body).toString('hex')}`);
}

describe('relay reservations under a flood', () => {
  it('refuses every stranger, keeps one slot for a home asking again and again, and still serves afterwards', async () => {
    const relay = await host({ relayServer: { maxReservations: 4 } });
    const relayAddr = relay.getMultiaddrs()[0]!;
    const home = await host();
    relay.services.connectionGuard.addHomes([home.peerId.toString()]);
    const strangers: PolyhomeHost[] = [];
    for (let i = 0; i < STRANGERS; i++) strangers.push(await host());
    for (const peer of [home, ...strangers]) await peer.dial(relayAddr);

    // Strangers, in parallel, each asking ATTEMPTS_EACH times: every answer a refusal.
    const answers = (
      await Promise.all(
        strangers.map(async (s) => {
          const out: Array<number | 'refused'> = [];
          for (let i = 0; i < ATTEMPTS_EACH; i++) out.push(await reserve(s, relay));
          return out;
        }),
      )
    ).flat();
    expect(answers).toHaveLength(STRANGERS * ATTEMPTS_EACH);
    expect(answers.filter((a) => a !== STATUS_PERMISSION_DENIED && a !== 'refused')).toEqual([]);
    expect(answers.filter((a) => a === STATUS_PERMISSION_DENIED).length).toBeGreaterThan(0);
    expect(relayReservations(relay.services.relay)).toEqual([]);

    // One home asking HOME_ATTEMPTS times: granted each time (a refresh), one slot held.
    for (let i = 0; i < HOME_ATTEMPTS; i++) expect(await reserve(home, relay)).toBe(STATUS_OK);
    expect(relayReservations(relay.services.relay).map((r) => r.peer_id)).toEqual([home.peerId.toString()]);

    // Healthy: it answers a ping, and a home that reserves now is reached through it.
    await relay.services.ping.ping(home.peerId);
    const late = await host({ relayClient: { checkDelay: 10, retryInterval: 100 } });
    relay.services.connectionGuard.addHomes([late.peerId.toString()]);
    late.services.relayReservations!.setRelays([relayAddr.toString()]);
    await waitFor(() => late.getMultiaddrs().some((a) => isRelayedAddr(a)), 'the late home’s reservation', 15_000);
    const latePort = late.getMultiaddrs()[0]!.toString().split('/')[4];
    const caller = await host({
      connectionGater: { denyDialMultiaddr: (ma) => !isRelayedAddr(ma) && ma.toString().includes(`/tcp/${latePort}/`) },
    });
    const via = late.getMultiaddrs().find((a) => isRelayedAddr(a))!;
    const connection = await caller.dial(multiaddr(via.toString()));
    expect(isRelayedAddr(connection.remoteAddr)).toBe(true);
    expect(
      relayReservations(relay.services.relay)
        .map((r) => r.peer_id)
        .sort(),
    ).toEqual([home.peerId.toString(), late.peerId.toString()].sort());
  }, 120_000);
});
