// A TCP proxy in the test process between two homes: `cut()` drops every connection through it and refuses
// new ones (a partition as both sides see it: connections die, dials fail), `restore()` lets traffic through
// again.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** A proxy from a local port to 127.0.0.1:`target`. */
export interface TcpProxy {
  /** The port to dial instead of the target. */
  port: number;
  /** Connections passed through so far (to check traffic really went this way). */
  readonly accepted: number;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: number): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let cut = false;
  let accepted = 0;
  const server: Server = createServer((inbound) => {
    if (cut) {
      inbound.destroy();
      return;
    }
    accepted++;
    const outbound = createConnection({ host: '127.0.0.1', port: target });
    open.add(inbound);
    open.add(outbound);
    const drop = (): void => {
      inbound.destroy();
      outbound.destroy();
      open.delete(inbound);
      open.delete(outbound);
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    cut() {
      cut = true;
      for (const socket of open) socket.destroy();
      open.clear();
    },
    restore() {
      cut = false;
    },
    async close() {
      cut = true;
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
