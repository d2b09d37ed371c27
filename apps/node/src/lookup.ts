// `polyhome lookup USER_ID --bootstrap MULTIADDR`: finds an account's homes through the DHT, from a user ID
// and one DHT peer, on a short-lived libp2p node with a throwaway key (no data directory needed).
import { generateKeyPair } from '@polyhome/identity';
import { withTransientHost } from '@polyhome/home';
import { P2pError, type LookedUpHome } from '@polyhome/p2p';
import { CliError, EXIT_USAGE } from './errors.js';

/** What lookup found. */
export interface LookupResult {
  user_id: string;
  doc_seq: number;
  homes: Array<Pick<LookedUpHome, 'peerId' | 'role' | 'name' | 'addrs' | 'provider'>>;
}

/** Looks the account up in the DHT reached through the bootstrap peers. */
export async function lookup(userId: string, bootstrap: string[], timeoutMs: number): Promise<LookupResult> {
  if (bootstrap.length === 0) {
    throw new CliError('lookup needs --bootstrap MULTIADDR: a peer of the DHT to start from.', EXIT_USAGE);
  }
  return withTransientHost({ nodeKey: generateKeyPair().secretKey, bootstrap }, async ({ host, discovery }) => {
    if (host.getConnections().length === 0) {
      throw new CliError(`Cannot reach any bootstrap peer (${bootstrap.join(', ')}): check the addresses.`);
    }
    const found = await discovery.lookup(userId, { signal: AbortSignal.timeout(timeoutMs) }).catch((err: unknown) => {
      if (err instanceof P2pError)
        throw new CliError(`${err.message}.`, err.code === 'INVALID_ACCOUNT_ID' ? EXIT_USAGE : 1);
      throw new CliError(`The DHT lookup failed: ${(err as Error).message}. Try again, or another --bootstrap peer.`);
    });
    return {
      user_id: found.document.user_id,
      doc_seq: found.document.seq,
      homes: found.homes.map(({ peerId, role, name, addrs, provider }) => ({ peerId, role, name, addrs, provider })),
    };
  });
}
