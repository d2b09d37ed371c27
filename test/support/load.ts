// The homes of one account for the fault tests, and a steady load of changes on them.
import { freePort } from '@polyhome/p2p/testing';
import { makeHome } from '@polyhome/sync/testing';
import { ClientNode, loginDevice, serverHomeOf } from './client-node.js';
import type { ServerProcess } from './server-process.js';

/** A server home and two client homes of one account: the laptop stays up, the phone may sleep. */
export interface Homes {
  laptop: ClientNode;
  phone: ClientNode;
  /** Starts the phone again on its port (its store was in memory: it comes back empty). */
  wakePhone(): Promise<ClientNode>;
}

/**
 * Makes an account whose homes are `server`, a laptop and a phone (test-process libp2p nodes), enrolls the
 * server and connects everything. The phone listens on a fixed port named in the document, so the server's
 * delivery jobs can reach it after it sleeps.
 */
export async function makeHomes(server: ServerProcess, seed: string): Promise<Homes> {
  const laptop = await ClientNode.start({ seed });
  await laptop.addHome(serverHomeOf(server, 'server'));
  const enrolled = await laptop.enroll(server);
  if (enrolled.status !== 201)
    throw new Error(`enrollment failed: ${enrolled.status} ${JSON.stringify(enrolled.body)}`);
  await laptop.connect(server);
  const phonePort = await freePort();
  const phoneLabel = `${seed}:phone`;
  const phoneHome = makeHome(phoneLabel, 'client', 'phone');
  const document = await laptop.addHome({ ...phoneHome.home, addrs: [`/ip4/127.0.0.1/tcp/${phonePort}`] });
  const homes: Homes = {
    laptop,
    phone: await ClientNode.another(laptop.account, phoneLabel, document, { port: phonePort }),
    async wakePhone() {
      homes.phone = await ClientNode.another(laptop.account, phoneLabel, homes.phone.document, { port: phonePort });
      return homes.phone;
    },
  };
  await homes.phone.connect(server);
  return homes;
}

/**
 * Changes from two sides until stopped: the laptop writes ops in batches (pushed to the server over libp2p),
 * and Matrix devices are logged in on the server (each a change of the server, acknowledged by its 200).
 * Failed logins (the server or its database being down) are counted, not retried.
 */
export class Load {
  /** Device ids whose login the server answered 200. */
  readonly logins: string[] = [];
  failedLogins = 0;
  opsWritten = 0;
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly laptop: ClientNode,
    private readonly server: ServerProcess,
    private readonly label: string,
    private readonly batch = 50,
    /** The laptop stops writing after this many ops (logins go on), so a slow machine is not swamped. */
    private readonly maxOps = Number.POSITIVE_INFINITY,
  ) {
    this.loops = [this.writeLoop(), this.loginLoop()];
  }

  private async writeLoop(): Promise<void> {
    while (this.running && this.opsWritten < this.maxOps) {
      await this.laptop.write(this.batch, this.label, this.batch);
      this.opsWritten += this.batch;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  private async loginLoop(): Promise<void> {
    while (this.running) {
      try {
        this.logins.push(await loginDevice(this.server, this.laptop.userId));
      } catch {
        this.failedLogins++;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /** Waits until the laptop has written at least `ops` ops in this load (at most `maxOps`). */
  async until(ops: number): Promise<void> {
    if (ops > this.maxOps) throw new Error(`this load writes at most ${this.maxOps} ops`);
    while (this.opsWritten < ops) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}
