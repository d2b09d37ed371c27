// Two devices of one account on two server homes verify each other with SAS (emoji), driven by matrix-js-sdk's
// Rust crypto: the request, ready, start, key, MAC and done messages all travel as to-device messages from
// one home to the other, and each device ends up trusting the other.
import { waitFor } from '@polyhome/p2p/testing';
import type { MatrixClient } from 'matrix-js-sdk';
import {
  CryptoEvent,
  VerificationPhase,
  VerifierEvent,
  type ShowSasCallbacks,
  type VerificationRequest,
  type Verifier,
} from 'matrix-js-sdk/lib/crypto-api/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_BACKENDS } from '../testing/server-harness.js';
import { startTwoHomes, type TwoHomes } from '../testing/two-homes.js';

const ADMIN_TOKEN = 'sas-two-homes-admin-token';

/** Waits for the verifier's SAS, confirms it and resolves with its emoji names once the verification is done. */
async function confirmSas(verifier: Verifier): Promise<string[]> {
  const shown = new Promise<ShowSasCallbacks>((resolve) => verifier.once(VerifierEvent.ShowSas, resolve));
  const verified = verifier.verify();
  const sas = verifier.getShowSasCallbacks() ?? (await shown);
  const emoji = (sas.sas.emoji ?? []).map(([, name]) => name);
  await sas.confirm();
  await verified;
  return emoji;
}

describe.each(SERVER_BACKENDS)('SAS verification between two homes of one account on $name', (backend) => {
  let homes: TwoHomes;
  let a: MatrixClient;
  let b: MatrixClient;

  beforeAll(async () => {
    homes = await startTwoHomes(backend, ADMIN_TOKEN);
    a = homes.clientA;
    b = homes.clientB;
    await Promise.all([a.initRustCrypto({ useIndexedDB: false }), b.initRustCrypto({ useIndexedDB: false })]);
    await Promise.all([a.startClient(), b.startClient()]);
  }, 60_000);
  afterAll(async () => {
    a?.stopClient();
    b?.stopClient();
    await homes?.close();
  });

  it('the device on A asks, the device on B accepts, both see the same emoji, and each trusts the other', async () => {
    const { userId } = homes;
    const deviceA = a.getDeviceId()!;
    const deviceB = b.getDeviceId()!;
    // Each device's keys are known to the other (replicated between the homes) before the request goes out.
    for (const [client, other] of [
      [a, deviceB],
      [b, deviceA],
    ] as const) {
      await waitFor(
        async () => (await client.getCrypto()!.getUserDeviceInfo([userId], true)).get(userId)?.has(other) === true,
        `device ${other} known to ${client.getDeviceId()}`,
        60_000,
      );
    }
    const received = new Promise<VerificationRequest>((resolve) =>
      b.on(CryptoEvent.VerificationRequestReceived, resolve),
    );
    const outgoing = await a.getCrypto()!.requestDeviceVerification(userId, deviceB);
    const incoming = await received;
    expect(incoming.otherDeviceId).toBe(deviceA);
    expect(incoming.isSelfVerification).toBe(true);
    await incoming.accept();
    await waitFor(() => outgoing.phase === VerificationPhase.Ready, 'the request ready on A', 60_000);

    const verifierA = await outgoing.startVerification('m.sas.v1');
    await waitFor(() => incoming.verifier !== undefined, "B's verifier, from A's start", 60_000);
    const [emojiA, emojiB] = await Promise.all([confirmSas(verifierA), confirmSas(incoming.verifier!)]);
    expect(emojiA).toHaveLength(7);
    expect(emojiB).toEqual(emojiA);

    await waitFor(
      () => outgoing.phase === VerificationPhase.Done && incoming.phase === VerificationPhase.Done,
      'both requests done',
      60_000,
    );
    const onA = await a.getCrypto()!.getDeviceVerificationStatus(userId, deviceB);
    const onB = await b.getCrypto()!.getDeviceVerificationStatus(userId, deviceA);
    expect(onA?.localVerified).toBe(true);
    expect(onB?.localVerified).toBe(true);
  }, 240_000);
});
