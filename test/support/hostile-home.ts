// A real server process hosting a fixture account, and one of the account's homes played by hand: a real
// libp2p node with the home's key and no sync service, for tests that send the server raw sync frames.
import { addHome, type AccountDocument } from '@polyhome/identity';
import { createPolyhomeHost, type PolyhomeHost } from '@polyhome/p2p';
import type { FixtureAccount } from '@polyhome/sync/testing';
import { expect } from 'vitest';
import { serverHomeOf } from './client-node.js';
import { startFreshServer, type FreshServer } from './server-process.js';

/** A fresh server enrolled in a fixture account (its document with the server added), and a hand-played home. */
export interface HostileSetup {
  fresh: FreshServer;
  document: AccountDocument;
  host: PolyhomeHost;
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
  return { fresh, document, host };
}
