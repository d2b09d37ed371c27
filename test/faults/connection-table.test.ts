// One stranger fills a real server process's libp2p connection table: idle connections from many PeerIds (and
// several from one PeerId), all from 127.0.0.1. Before the fix the table took anything up to its cap of 300
// (299 idle connections were seen, opened at 4/s), and the account's own home then got ECONNRESET. Now the
// server refuses a stranger's connections past the per-peer and per-IP limits, closes them once idle, and the
// account's own client home (from the same address) still connects and syncs a change.
//
// The limits are lowered through the server's environment so that this runs in seconds: 2 per peer, 6
// strangers' connections per IP, idle strangers closed after 10 s.
import {
  openConnectionsTo,
  openStrangerConnection,
  startStranger,
  waitFor,
  type StrangerNode,
} from '@polyhome/p2p/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientNode, serverHomeOf } from '../support/client-node.js';
import { startFreshServer, type FreshServer, type ServerProcess } from '../support/server-process.js';

const PER_PEER = 2;
const PER_IP = 6;
/** Strangers with one connection each, after the first one that tries for many. */
const STRANGERS = 10;
/** Connections the first stranger tries to open. */
const FIRST_TRIES = 4;
/** A deadline for a loaded machine, not an expectation. */
const WAIT_MS = 40_000;

describe('one stranger filling the connection table of a server process', () => {
  let fresh: FreshServer;
  let server: ServerProcess;
  let laptop: ClientNode;
  const strangers: StrangerNode[] = [];

  beforeAll(async () => {
    fresh = await startFreshServer('conn-table', {
      P2P_MAX_CONNECTIONS: '40',
      P2P_HOME_CONNECTION_RESERVE: '10',
      P2P_MAX_CONNECTIONS_PER_PEER: String(PER_PEER),
      P2P_MAX_STRANGER_CONNECTIONS_PER_IP: String(PER_IP),
      P2P_STRANGER_IDLE_TIMEOUT_MS: '10000',
      // The flood here is of connections held, not of connection attempts (a limit of its own, left at 5/s in use).
      P2P_INBOUND_CONNECTION_THRESHOLD: '1000',
    });
    server = fresh.server;
    laptop = await ClientNode.start({ seed: `conn-table-${process.pid}` });
    await laptop.addHome(serverHomeOf(server, 'server'));
    const enrolled = await laptop.enroll(server);
    expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(201);
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled(strangers.map(async (s) => s.stop()));
    await laptop?.stop();
    await fresh?.dispose();
  }, 60_000);

  /** The home writes one op and the server acknowledges it. */
  async function syncsAChange(label: string): Promise<void> {
    await laptop.write(1, label);
    const written = (await laptop.versionVector())[laptop.home.peerId] ?? 0;
    await waitFor(
      () => (laptop.acked.get(server.peerId)?.[laptop.home.peerId] ?? 0) >= written,
      `the server to acknowledge the home's change ${label}`,
      WAIT_MS,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${server.tail()}`);
    });
  }

  /** The connections the strangers hold open with the server. */
  const held = (): number => strangers.reduce((n, s) => n + openConnectionsTo(s, server.peerId), 0);

  it('refuses the stranger past the per-peer and per-IP limits, closes it when idle, and lets the home sync', async () => {
    const first = await startStranger();
    strangers.push(first);
    for (let i = 0; i < FIRST_TRIES; i++) await openStrangerConnection(first, server.addr);
    for (let i = 0; i < STRANGERS; i++) {
      const stranger = await startStranger();
      strangers.push(stranger);
      await openStrangerConnection(stranger, server.addr);
    }
    // PER_PEER of the first stranger's, then one each of the others up to PER_IP: the rest were refused.
    await waitFor(
      () => openConnectionsTo(first, server.peerId) === PER_PEER && held() === PER_IP,
      `the strangers to hold ${PER_IP} connections, ${PER_PEER} of them the first one's`,
      WAIT_MS,
      100,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}: they hold ${held()}, the first ${openConnectionsTo(first, server.peerId)}`);
    });

    // The account's own home, from the same address, still connects and syncs a change.
    await laptop.connect(server);
    await syncsAChange('TABLE');

    // The strangers' connections are idle: closed. The home keeps its own.
    await waitFor(() => held() === 0, "the idle strangers' connections to be closed", WAIT_MS, 200);
    expect(openConnectionsTo(laptop.host, server.peerId)).toBeGreaterThanOrEqual(1);
    await syncsAChange('AFTER');
  }, 150_000);
});
