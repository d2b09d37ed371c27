// A real server process hosting a fixture account, and one of the account's homes played by hand: a real
// libp2p node with the home's key and no sync service, for tests that send the server raw sync frames.
import { addHome, type AccountDocument } from '@polyhome/identity';
import { createPolyhomeHost, SYNC_PROTOCOL, type PolyhomeHost } from '@polyhome/p2p';
import type { Op } from '@polyhome/sync';
import type { FixtureAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, expect } from 'vitest';
import { serverHomeOf } from './client-node.js';
import { sendSyncFrames } from './raw-sync.js';
import { startFreshServer, type FreshServer, type ServerProcess } from './server-process.js';

/** A fresh server enrolled in a fixture account (its document with the server added), and a hand-played home. */
export interface HostileSetup {
  fresh: FreshServer;
  document: AccountDocument;
  host: PolyhomeHost;
  /** Sends frames after a hello (naming document `docSeq`) on one sync stream; fails on an error frame. */
  send(frames: unknown[], docSeq: number): Promise<void>;
  /** An `ops` frame of the account. */
  opsFrame(ops: readonly Op[]): unknown;
  /** Stops the home and the server. */
  dispose(): Promise<void>;
}

/** Starts a fresh server, enrolls it in `account` and starts a libp2p node with the key of home `home`. */
export async function serverWithHandPlayedHome(
  label: string,
  account: FixtureAccount,
  home = 0,
): Promise<HostileSetup> {
  const fresh = await startFreshServer(label);
  const document = addHome(account.document, serverHomeOf(fresh.server, 'server'), account.rootKey);
  const enrolled = await fresh.server.request('POST', '/_polyhome/v1/enroll', { document });
  expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(201);
  const host = await createPolyhomeHost({ nodeKey: account.homes[home]!.secretKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
  const send = async (frames: unknown[], docSeq: number): Promise<void> => {
    const hello = { t: 'hello', account: account.serverName, doc_seq: docSeq, vv: {} };
    const reply = await sendSyncFrames(host, fresh.server.addr, SYNC_PROTOCOL, hello, frames);
    expect(reply.frames.filter((f) => (f as { t?: string }).t === 'error')).toEqual([]);
  };
  const dispose = async (): Promise<void> => {
    await host.stop();
    await fresh.dispose();
  };
  const opsFrame = (ops: readonly Op[]): unknown => ({ t: 'ops', account: account.serverName, ops });
  return { fresh, document, host, send, opsFrame, dispose };
}

/** What a suite of tests against a hand-played home sees once its `beforeAll` has run. */
export interface HostileSuite {
  readonly setup: HostileSetup;
  readonly fresh: FreshServer;
  readonly server: ServerProcess;
  /** The account's document with the server added (the one in force on the server at start). */
  readonly document: AccountDocument;
}

/**
 * Registers the `beforeAll` that starts a fresh server enrolled in `account` with home `home` played by hand
 * (serverWithHandPlayedHome), and the `afterAll` that stops both. Read the fields inside tests.
 */
export function useHandPlayedHome(label: string, account: FixtureAccount, home = 0): HostileSuite {
  let setup: HostileSetup | undefined;
  beforeAll(async () => {
    setup = await serverWithHandPlayedHome(label, account, home);
  }, 180_000);
  afterAll(async () => {
    await setup?.dispose();
  }, 60_000);
  const started = (): HostileSetup => {
    if (setup === undefined) throw new Error(`the hand-played home of ${label} has not started`);
    return setup;
  };
  return {
    get setup() {
      return started();
    },
    get fresh() {
      return started().fresh;
    },
    get server() {
      return started().fresh.server;
    },
    get document() {
      return started().document;
    },
  };
}
