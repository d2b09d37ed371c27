import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { SealingKey, decodeHex, loadOrCreateNodeKey, type SecretKey } from '@polyhome/identity';
import { loadOrCreateSecretFile } from './secret-file.js';

/** The server's own keys: its libp2p node key (its identity as a home) and the key sealing hosted root keys. */
export interface ServerSecrets {
  nodeKey: SecretKey;
  sealingKey: SealingKey;
  /** Files created at this start (for a one-time log line naming them, never their content). */
  created: string[];
}

/**
 * Loads DATA_DIR/node.key (created 0600 at first start: a stable PeerId across restarts) and the sealing key
 * from SEALING_KEY or DATA_DIR/sealing-key (created 0600 at first start).
 */
export async function loadServerSecrets(
  dataDir: string,
  configuredSealingKey: string | undefined,
): Promise<ServerSecrets> {
  const created: string[] = [];
  const nodeKeyFile = path.resolve(dataDir, 'node.key');
  const node = await loadOrCreateNodeKey(nodeKeyFile);
  if (node.created) created.push(nodeKeyFile);
  let sealingHex = configuredSealingKey;
  if (sealingHex === undefined) {
    const secret = await loadOrCreateSecretFile(
      path.resolve(dataDir, 'sealing-key'),
      () => randomBytes(32).toString('hex'),
      (value) => /^[0-9a-f]{64}$/.test(value),
      'sealing key (64 hex characters)',
    );
    if (secret.created) created.push(secret.file);
    sealingHex = secret.value;
  }
  return { nodeKey: node.secretKey, sealingKey: SealingKey.fromBytes(decodeHex(sealingHex)), created };
}

/** Injection token of the ServerSecrets. */
export const SERVER_SECRETS = Symbol('SERVER_SECRETS');
