// A node made with `init --join` is named by strangers before its owner adds it. Before the fix, it took in the
// account of the first home that opened a session for an account whose document listed it: an attacker who
// learnt the PeerId and added it to their own account won the node. Now the node takes in only an account
// whose offering home proves the pairing code the node printed at `init --join` (an HMAC over a nonce of the
// node's, /polyhome/pairing/1.0.0); a home that proves none is refused without counting, a wrong proof counts
// towards replacing the code.
//
// All real processes of the CLI (`apps/node/dist/cli.js`) on 127.0.0.1: the joining node, two attackers' homes
// (one adds the node without a code, one with a wrong code), and the owner's home with the right code.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from '../support/cli-node.js';

interface Status {
  accounts: Array<{ user_id: string }>;
}

describe('a node made with `init --join`, named by attackers before its owner', () => {
  const dirs: string[] = [];
  const nodes: CliNode[] = [];
  let joiner: CliNode;
  let joinerPeer = '';
  let pairingCode = '';

  const node = async (name: string): Promise<CliNode> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), `polyhome-pairing-${name}-`));
    dirs.push(dir);
    const made = new CliNode(name, dir);
    nodes.push(made);
    return made;
  };
  /** A home with a new account that adds the joining node (by its address) with `extra` arguments. */
  const accountAdding = async (name: string, ...extra: string[]): Promise<{ home: CliNode; userId: string }> => {
    const home = await node(name);
    const { user_id: userId } = await home.json<{ user_id: string }>('init', '--localpart', name, '--name', name);
    await home.start();
    const added = await home.run('home', 'add', joiner.addr, '--role', 'client', '--name', 'joiner', ...extra);
    expect(added.code, added.err).toBe(0);
    return { home, userId };
  };
  const refusals = (reason: string): string[] =>
    joiner.output.filter((l) => l.includes('account not taken in') && l.includes(`reason=${reason}`));

  beforeAll(async () => {
    joiner = await node('joiner');
    const made = await joiner.json<{ peer_id: string; pairing_code: string }>('init', '--join');
    joinerPeer = made.peer_id;
    pairingCode = made.pairing_code;
    expect(pairingCode).toMatch(/^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/);
    await joiner.start();
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop('SIGKILL')));
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('refuses an attacker that adds it without the code, and counts nothing', async () => {
    const { userId } = await accountAdding('mallory');
    await waitFor(() => refusals('no-proof').length > 0, 'the joiner to refuse mallory', 180_000);
    expect(refusals('no-proof')[0]).toContain('pairing code');
    expect((await joiner.json<Status>('status')).accounts).toEqual([]);
    expect(await joiner.json('pairing-code')).toEqual({ pairing_code: pairingCode, wrong_proofs: 0 });
    expect(userId).not.toBe('');
  }, 400_000);

  it('refuses an attacker that adds it with a wrong code, and counts the wrong proof', async () => {
    const wrong = pairingCode.startsWith('0') ? '11111-11111' : '00000-00000';
    const { home } = await accountAdding('trudy', '--pairing-code', wrong);
    await waitFor(() => refusals('wrong-proof').length > 0, 'the joiner to refuse trudy', 180_000);
    // Trudy's home would try again at each reconnection; stop it so the count stays below the replacement.
    await home.stop();
    expect((await joiner.json<Status>('status')).accounts).toEqual([]);
    const after = await joiner.json<{ pairing_code: string; wrong_proofs: number }>('pairing-code');
    expect(after.pairing_code).toBe(pairingCode);
    expect(after.wrong_proofs).toBeGreaterThanOrEqual(1);
  }, 400_000);

  it("takes in the owner's account, proven with the right code, and only that; the code is spent", async () => {
    // Typed as read aloud: lower case, no dash.
    const { home: owner, userId } = await accountAdding(
      'alice',
      '--pairing-code',
      pairingCode.replace('-', '').toLowerCase(),
    );
    await waitFor(
      async () => (await joiner.json<Status>('status')).accounts.some((a) => a.user_id === userId),
      "the joiner to take in the owner's account",
      180_000,
    );
    expect(joiner.output.some((l) => l.startsWith(`joined ${userId}`))).toBe(true);
    expect((await joiner.json<Status>('status')).accounts.map((a) => a.user_id)).toEqual([userId]);
    const homes = await joiner.json<{ homes: Array<{ peer_id: string; self: boolean }> }>('home', 'list');
    expect(homes.homes.find((h) => h.self)?.peer_id).toBe(joinerPeer);
    // The code is spent: nothing left to prove, nothing left to guess.
    const spent = await joiner.run('pairing-code');
    expect(spent.code).toBe(1);
    expect(spent.err).toMatch(/no pairing code: this node holds an account already/);
    // Mallory's home still runs and reconnects: the joiner holds the owner's account only.
    expect((await joiner.json<Status>('status')).accounts.map((a) => a.user_id)).toEqual([userId]);
    expect(owner.running).toBe(true);
  }, 400_000);
});
