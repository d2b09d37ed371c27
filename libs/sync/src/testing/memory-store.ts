// The ReplicaStore port over in-memory replicas: what the libp2p protocol and other engines are tested
// against before the database store exists, and the reference behaviour that store must match.
import type { AccountDocument } from '@polyhome/identity';
import { UnknownAccountError } from '../errors.js';
import {
  applyOps,
  createReplica,
  documentOf,
  logDigests,
  offerDocument,
  opsMissing,
  versionVector,
  type Replica,
  type ReplicaOptions,
} from '../replica.js';
import type { ApplyResult, Op, ReplicaStore, VersionVector } from '../types.js';

/** A ReplicaStore holding one in-memory Replica per hosted account. */
export class MemoryReplicaStore implements ReplicaStore {
  readonly #replicas = new Map<string, Replica>();

  constructor(private readonly options: ReplicaOptions = {}) {}

  /** Starts hosting the account a document describes (the document is verified). Returns the account server name. */
  host(document: AccountDocument): string {
    const replica = createReplica(document, this.options);
    this.#replicas.set(replica.account, replica);
    return replica.account;
  }

  /** The current replica of an account (for assertions: stateOf, flaggedOrigins, ...). Throws UnknownAccountError. */
  replica(account: string): Replica {
    const replica = this.#replicas.get(account);
    if (replica === undefined) throw new UnknownAccountError(account);
    return replica;
  }

  /** Replaces the replica of an account (tests that build replicas directly). */
  setReplica(replica: Replica): void {
    this.#replicas.set(replica.account, replica);
  }

  /** Accounts hosted, sorted. */
  accounts(): string[] {
    return [...this.#replicas.keys()].sort();
  }

  /** The document in force, or undefined when the account is not hosted here. */
  async document(account: string): Promise<AccountDocument | undefined> {
    const replica = this.#replicas.get(account);
    return replica === undefined ? undefined : documentOf(replica);
  }

  /** Offers a document; returns the one in force (a replay or equivocation leaves the held one). Throws UnknownAccountError, DocumentRejectedError. */
  async offerDocument(account: string, document: AccountDocument, _from: string): Promise<AccountDocument> {
    const [replica] = offerDocument(this.replica(account), document);
    this.#replicas.set(account, replica);
    return documentOf(replica);
  }

  /** The version vector of what this store holds. Throws UnknownAccountError. */
  async versionVector(account: string): Promise<VersionVector> {
    return versionVector(this.replica(account));
  }

  /** Up to `limit` ops the holder of `vv` lacks, per origin in seq order. Throws UnknownAccountError. */
  async opsMissing(account: string, vv: VersionVector, limit: number): Promise<Op[]> {
    return opsMissing(this.replica(account), vv, limit);
  }

  /** Per-origin log digests. Throws UnknownAccountError. */
  async logDigests(account: string): Promise<Record<string, string>> {
    return logDigests(this.replica(account));
  }

  /** Validates and applies a batch. Throws UnknownAccountError. */
  async applyOps(account: string, ops: readonly unknown[], _from: string): Promise<ApplyResult> {
    const [replica, result] = applyOps(this.replica(account), ops);
    this.#replicas.set(account, replica);
    return result;
  }
}
