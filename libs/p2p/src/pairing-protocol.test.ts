// /polyhome/pairing/1.0.0 between two real libp2p nodes on 127.0.0.1: the code's format, and a joining node
// asking the home that was given its code (and one that was not) for a proof over its nonce.
import { SecretKey } from '@polyhome/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPolyhomeHost, type PolyhomeHost } from './host.js';
import {
  checkPairingProof,
  newPairingCode,
  NO_PAIRING,
  normalizePairingCode,
  pairingNonce,
  pairingProof,
  PairingHandler,
  requestPairingProof,
} from './pairing-protocol.js';

async function startHost(): Promise<PolyhomeHost> {
  return createPolyhomeHost({ nodeKey: SecretKey.generate(), listen: ['/ip4/127.0.0.1/tcp/0'] });
}

describe('pairing codes', () => {
  it('are two groups of five Crockford base32 characters, read back however they are typed', () => {
    const code = newPairingCode();
    expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/);
    expect(normalizePairingCode(code)).toBe(code.replace('-', ''));
    expect(normalizePairingCode(` ${code.toLowerCase().replace('-', ' ')} `)).toBe(code.replace('-', ''));
    expect(normalizePairingCode('OIL23-45678')).toBe('0112345678');
    expect(normalizePairingCode('ABCDE-FGHU1')).toBeUndefined();
    expect(normalizePairingCode('ABCD')).toBeUndefined();
    expect(new Set(Array.from({ length: 50 }, newPairingCode)).size).toBe(50);
  });

  it('prove one challenge: another account, PeerId, nonce or code fails the check', () => {
    const code = newPairingCode();
    const challenge = { account: 'a.example', joiner: 'J', adder: 'A', nonce: pairingNonce() };
    const mac = pairingProof(code, challenge);
    expect(checkPairingProof(code.toLowerCase(), challenge, mac)).toBe(true);
    expect(checkPairingProof(code, { ...challenge, account: 'b.example' }, mac)).toBe(false);
    expect(checkPairingProof(code, { ...challenge, adder: 'M' }, mac)).toBe(false);
    expect(checkPairingProof(code, { ...challenge, nonce: pairingNonce() }, mac)).toBe(false);
    expect(checkPairingProof(newPairingCode(), challenge, mac)).toBe(false);
    expect(checkPairingProof(code, challenge, `${mac}x`)).toBe(false);
  });
});

describe('/polyhome/pairing/1.0.0', () => {
  let adder: PolyhomeHost;
  let joiner: PolyhomeHost;
  let handler: PairingHandler;
  const code = newPairingCode();

  beforeAll(async () => {
    [adder, joiner] = await Promise.all([startHost(), startHost()]);
    handler = new PairingHandler(adder, adder.peerId.toString(), (account, peer) =>
      account === 'a.example' && peer === joiner.peerId.toString() ? code : undefined,
    );
    await handler.start();
    await joiner.dial(adder.getMultiaddrs()[0]!);
  });
  afterAll(async () => {
    await handler?.stop();
    await Promise.all([adder?.stop(), joiner?.stop()]);
  });

  it('the home given the code proves it over the asking node’s nonce', async () => {
    const nonce = pairingNonce();
    const answer = await requestPairingProof(joiner, adder.peerId.toString(), { account: 'a.example', nonce });
    expect('mac' in answer).toBe(true);
    const challenge = { account: 'a.example', joiner: joiner.peerId.toString(), adder: adder.peerId.toString(), nonce };
    expect(checkPairingProof(code, challenge, (answer as { mac: string }).mac)).toBe(true);
  });

  it('a home given no code for this node and account says so, and proves nothing', async () => {
    const answer = await requestPairingProof(joiner, adder.peerId.toString(), {
      account: 'b.example',
      nonce: pairingNonce(),
    });
    expect(answer).toMatchObject({ errcode: NO_PAIRING });
    const short = await requestPairingProof(joiner, adder.peerId.toString(), { account: 'a.example', nonce: 'x' });
    expect(short).toMatchObject({ errcode: 'M_BAD_JSON' });
  });
});
