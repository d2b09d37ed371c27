// DCUtR upgrades a relayed connection to a direct one where the network allows it (test/netns/lab.ts; root only,
// as .ci/run runs). The case js-libp2p's DCUtR can upgrade over TCP: one home behind a NAT (alice's laptop, l1
// behind r1) and the other on a public address (her desk, p1). The desk dials the laptop through a server home's
// relay (the only way in); the laptop, the inbound side, sees the desk's public address through identify and
// dials it directly (the "unilateral upgrade"), then closes the relayed connection. Why two NATed homes stay
// relayed with js-libp2p over TCP: docs/decisions.md, "DCUtR: which upgrades work (issue 17)".
//
// The path is shown three ways: the laptop's libp2p:dcutr log (a relayed connection from the desk existed and
// was replaced), both homes' connection lists (direct, none relayed), and counters of nftables rules on the
// laptop's router: the direct laptop-desk path carries the change made after the upgrade. The laptop would as
// well dial the public desk directly by itself; the test makes the desk's relayed dial come first (see there).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from '../support/cli-node.js';
import { NsServer, SERVER_P2P_PORT } from './homes.js';
import { NetnsLab } from './lab.js';

/**
 * A public segment with addresses libp2p counts as public (DCUtR never dials a private one): 11.77.0.0/24 in
 * namespaces that route nowhere but to each other, so it reaches no real host.
 */
const PUBLIC_NET = '11.77.0';
const LAPTOP_PORT = 4101;
const DESK_PORT = 4102;
/** Waits that include a relay reservation retry (10 s, doubling) and a dial timeout, on a loaded machine. */
const CONVERGE_MS = 150_000;
/** Times the desk is restarted to make a relayed connection the laptop's DCUtR upgrades (see the test). */
const ATTEMPTS = 3;

interface Status {
  accounts: Array<{ user_id: string }>;
  connections?: Array<{ peer_id: string; addr: string; relayed: boolean }>;
}
interface Counter {
  packets: number;
  bytes: number;
}

describe('DCUtR: a relayed connection between a home behind NAT and a public home is upgraded to direct', () => {
  const dirs: string[] = [];
  let lab: NetnsLab | undefined;
  let s1: NsServer;
  let s2: NsServer;
  let desk: CliNode;
  let laptop: CliNode;
  const ids = { user: '', desk: '', laptop: '' };

  const temp = async (label: string): Promise<string> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), `polyhome-netns-${label}-`));
    dirs.push(dir);
    return dir;
  };
  const connections = async (from: CliNode, peer: string): Promise<Array<{ addr: string; relayed: boolean }>> =>
    ((await from.json<Status>('status')).connections ?? []).filter((c) => c.peer_id === peer);

  // Counting rules at the head of the laptop router's forward chain (a rule with no verdict only counts): the
  // direct laptop-desk path each way, and the laptop's path to the server homes (the relays) each way.
  const COUNTERS = {
    directOut: (a: Record<string, string>) => `ip saddr ${a['l1']} ip daddr ${a['p1']} tcp dport ${DESK_PORT}`,
    directIn: (a: Record<string, string>) => `ip saddr ${a['p1']} tcp sport ${DESK_PORT} ip daddr ${a['l1']}`,
    relaysOut: (a: Record<string, string>) =>
      `ip saddr ${a['l1']} ip daddr { ${a['s1']}, ${a['s2']} } tcp dport ${SERVER_P2P_PORT}`,
    relaysIn: (a: Record<string, string>) =>
      `ip saddr { ${a['s1']}, ${a['s2']} } tcp sport ${SERVER_P2P_PORT} ip daddr ${a['l1']}`,
  } as const;
  type CounterName = keyof typeof COUNTERS;
  /** A rule of r1's forward chain by its comment: its handle and counter. */
  const rule = async (comment: string): Promise<{ handle: number; counter: Counter }> => {
    const listed = JSON.parse(
      await lab!.exec('r1', ['nft', '-j', '-a', 'list', 'chain', 'ip', 'filter', 'forward']),
    ) as {
      nftables: Array<{ rule?: { comment?: string; handle: number; expr: Array<{ counter?: Counter }> } }>;
    };
    const found = listed.nftables.find((item) => item.rule?.comment === comment)?.rule;
    const counter = found?.expr.find((e) => e.counter !== undefined)?.counter;
    if (found === undefined || counter === undefined) throw new Error(`rule ${comment} missing on r1`);
    return { handle: found.handle, counter };
  };
  const counters = async (): Promise<Record<CounterName, Counter>> => {
    const out: Partial<Record<CounterName, Counter>> = {};
    for (const name of Object.keys(COUNTERS) as CounterName[]) out[name] = (await rule(name)).counter;
    return out as Record<CounterName, Counter>;
  };

  beforeAll(async () => {
    lab = await NetnsLab.create({ publicNet: PUBLIC_NET, publicHome: true });
    s1 = new NsServer(lab, 's1', await temp('s1'));
    s2 = new NsServer(lab, 's2', await temp('s2'));
    await s1.start();
    await s2.start({ P2P_BOOTSTRAP: s1.addr });
    desk = new CliNode('desk', await temp('desk'), undefined, lab.ns('p1'));
    laptop = new CliNode('laptop', await temp('laptop'), undefined, lab.ns('l1'));
  }, 300_000);

  afterEach(async (context) => {
    if (context.task.result?.state !== 'fail' || lab === undefined) return;
    const held = async (node: CliNode): Promise<string> =>
      JSON.stringify((await node.json<Status>('status').catch((e: Error) => ({ connections: e.message }))).connections);
    console.log(
      [
        `laptop connections: ${await held(laptop)}`,
        `desk connections: ${await held(desk)}`,
        `laptop:\n${laptop?.tail(80)}`,
        `desk:\n${desk?.tail(40)}`,
        `s1:\n${s1.tail(20)}`,
        `s2:\n${s2.tail(20)}`,
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await Promise.allSettled([laptop?.stop('SIGKILL'), desk?.stop('SIGKILL')]);
    if (lab !== undefined) {
      await lab.destroy();
      expect(await lab.leftovers()).toEqual([]);
    }
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('the desk reaches the laptop through a relay, the laptop upgrades to direct, and the direct path carries sync', async () => {
    const a = lab!.addrs;
    const bootstrap = ['--bootstrap', s1.addr, s2.addr];
    const made = await desk.initAccount('alice', 'desk');
    ids.user = made.user_id;
    ids.desk = made.peer_id;
    // A public home says so (libp2p announces a public listen address only once AutoNAT confirms it, which needs
    // answers from several networks).
    await desk.start(
      '--p2p',
      `/ip4/0.0.0.0/tcp/${DESK_PORT}`,
      '--announce',
      `/ip4/${a.p1}/tcp/${DESK_PORT}`,
      ...bootstrap,
    );
    for (const server of [s1, s2]) {
      await desk.json('home', 'add', server.addr, '--role', 'server', '--name', server.host);
    }
    const joined = await laptop.json<{ peer_id: string; pairing_code: string }>('init', '--join');
    ids.laptop = joined.peer_id;
    // The laptop logs what its DCUtR service does (libp2p's debug output, on stderr with a timestamp).
    const debug = process.env['NODE_DEBUG_LIBP2P'];
    process.env['NODE_DEBUG_LIBP2P'] = 'libp2p:dcutr*';
    try {
      await laptop.start('--p2p', `/ip4/0.0.0.0/tcp/${LAPTOP_PORT}`, ...bootstrap);
    } finally {
      if (debug === undefined) delete process.env['NODE_DEBUG_LIBP2P'];
      else process.env['NODE_DEBUG_LIBP2P'] = debug;
    }

    // The network: the laptop reaches the desk directly (out through its NAT); nothing reaches the laptop.
    expect(await lab!.canConnect('l1', a.p1, DESK_PORT)).toBe(true);
    expect(await lab!.canConnect('p1', a.r1, LAPTOP_PORT)).toBe(false);
    expect(await lab!.canConnect('p1', a.l1, LAPTOP_PORT)).toBe(false);
    for (const [name, match] of Object.entries(COUNTERS)) {
      await lab!.exec('r1', ['nft', `insert rule ip filter forward ${match(a)} counter comment "${name}"`]);
    }

    // The desk adds the laptop (the laptop, once the document naming it reaches the server homes, may take it in
    // over a direct connection of its own: the desk's address is public).
    await desk.json(
      'home',
      'add',
      ids.laptop,
      '--role',
      'client',
      '--name',
      'laptop',
      '--pairing-code',
      joined.pairing_code,
    );
    await waitFor(
      async () => (await laptop.json<Status>('status')).accounts.some((acc) => acc.user_id === ids.user),
      'the laptop to take the account in',
      CONVERGE_MS,
      1_000,
    );
    await waitFor(
      async () => laptop.output.some((l) => l.startsWith('relayed ')),
      'the laptop’s relay reservations',
      CONVERGE_MS,
      250,
    );

    // The relayed connection comes first when the desk dials it: the desk is stopped and started again (it dials
    // its homes at start, the laptop only through a relay). The laptop redials its homes too, directly; so that
    // the desk's relayed dial comes first, the laptop's router holds the laptop's new connections to the desk
    // (drops their SYNs) until the laptop's DCUtR starts its direct dial, and then lets them through: the
    // dial's SYN, sent again by TCP after 1 s, passes, within DCUtR's 5 s.
    //
    // The release is a race between the test's `nft` command and the laptop's dial (under a loaded machine, the
    // retransmitted SYN can come before the rule is gone, and DCUtR then gives up on that connection): the
    // whole arrangement is repeated, at most ATTEMPTS times, until one upgrade succeeds. Each attempt's outcome
    // is read from the laptop's log lines written after the attempt began.
    const hold = `ip saddr ${a.l1} ip daddr ${a.p1} tcp dport ${DESK_PORT} ct state new`;
    await lab!.exec('r1', ['nft', `insert rule ip filter forward ${hold} counter comment "held"`]);
    const attempting = `attempting unilateral connection upgrade to /ip4/${a.p1}/tcp/${DESK_PORT}`;
    const upgraded = new RegExp(`unilateral connection upgrade to ${ids.desk} succeeded via \\S*${a.p1}`);
    const gaveUp = /error while attempting DCUtR on attempt 3 of 3|unilateral connection upgrade .* failed/;
    let restarted = 0;
    let attempt: string | undefined;
    let success: string | undefined;
    const tries: string[] = [];
    for (let round = 1; round <= ATTEMPTS && success === undefined; round++) {
      await desk.stop();
      await waitFor(
        async () => (await connections(laptop, ids.desk)).length === 0,
        'the laptop to see the desk gone',
        CONVERGE_MS,
        250,
      );
      await lab!.exec('r1', ['nft', `insert rule ip filter forward ${hold} counter drop comment "hold"`]);
      const { handle } = await rule('hold');
      const from = laptop.output.length;
      const since = (): string[] => laptop.output.slice(from);
      restarted = Date.now();
      const starting = desk.start(
        '--p2p',
        `/ip4/0.0.0.0/tcp/${DESK_PORT}`,
        '--announce',
        `/ip4/${a.p1}/tcp/${DESK_PORT}`,
        ...bootstrap,
      );
      await waitFor(
        async () => since().some((l) => l.includes(attempting)),
        'the laptop’s DCUtR to start on a relayed connection from the desk',
        CONVERGE_MS,
        5,
      );
      // Released at once (one command), then read: the counter of a deleted rule is gone, so it is read through
      // a copy of the rule that only counts.
      await lab!.exec('r1', ['nft', `delete rule ip filter forward handle ${handle}`]);
      await starting;
      // This attempt's outcome: the upgrade, or DCUtR giving up on this connection.
      await waitFor(
        async () => since().some((l) => upgraded.test(l) || gaveUp.test(l)),
        'the DCUtR attempt to end',
        CONVERGE_MS,
        250,
      );
      // A failure line may come just before the success of a later try within the same attempt.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      attempt = since().find((l) => l.includes(attempting));
      success = since().find((l) => upgraded.test(l));
      tries.push(
        success === undefined
          ? `attempt ${round}: ${since()
              .filter((l) => gaveUp.test(l))
              .join(' | ')}`
          : `attempt ${round}: upgraded`,
      );
    }
    expect(success, `DCUtR upgraded on none of ${ATTEMPTS} attempts: ${tries.join('; ')}`).toBeDefined();
    const held = await rule('held');
    const at = (line: string | undefined): number => Date.parse(line?.match(/^\S*(\d{4}-\d\d-\d\dT\S+Z)/)?.[1] ?? '');
    const upgradeMs = at(success) - at(attempt);

    // Both homes hold only the direct connection: the laptop's to the desk's public address, the desk's from the
    // laptop's router (the NAT's address).
    await waitFor(
      async () => {
        const fromLaptop = await connections(laptop, ids.desk);
        const fromDesk = await connections(desk, ids.laptop);
        return (
          fromLaptop.length > 0 &&
          fromLaptop.every((c) => !c.relayed && c.addr.startsWith(`/ip4/${a.p1}/tcp/${DESK_PORT}`)) &&
          fromDesk.length > 0 &&
          fromDesk.every((c) => !c.relayed && c.addr.startsWith(`/ip4/${a.r1}/tcp/`))
        );
      },
      'only a direct connection between the laptop and the desk',
      CONVERGE_MS,
      500,
    );

    // The direct path carried the change made after the upgrade: its counters grew while the change went from
    // the laptop to the desk.
    const before = await counters();
    await laptop.json('room', 'join', '!dcutr:example.org');
    await waitFor(
      async () =>
        (await desk.json<{ memberships: Array<{ room_id: string }> }>('room', 'list')).memberships.some(
          (m) => m.room_id === '!dcutr:example.org',
        ),
      'the membership on the desk',
      CONVERGE_MS,
      250,
    );
    const after = await counters();
    expect(after.directOut.packets).toBeGreaterThan(before.directOut.packets);
    expect(after.directIn.packets).toBeGreaterThan(before.directIn.packets);
    // Direct only. The laptop may hold two: each of its relays' connections can be upgraded (both succeeded in a
    // rehearsal), as the wait above allows.
    const direct = await connections(laptop, ids.desk);
    expect(direct.length).toBeGreaterThan(0);
    expect(direct.filter((c) => c.relayed)).toEqual([]);
    const delta = (name: CounterName): string =>
      `${after[name].packets - before[name].packets} packets / ${after[name].bytes - before[name].bytes} B`;
    // Figures, not assertions (no timed assertions in tests).
    console.log(
      `netns dcutr: unilateral upgrade in ${upgradeMs} ms (laptop's log), ${at(success) - restarted} ms after ` +
        `the desk's restart began (${held.counter.packets} direct SYNs of the laptop held meanwhile; ` +
        `${tries.join(', ')}); ` +
        `during the membership change: ` +
        `direct laptop->desk ${delta('directOut')}, desk->laptop ${delta('directIn')}; ` +
        `laptop->server homes ${delta('relaysOut')}, server homes->laptop ${delta('relaysIn')}; ` +
        `direct path since the start: ${after.directOut.packets} packets out, ${after.directIn.packets} in`,
    );
  }, 600_000);
});
