// Test helper: what a table holds, for tests outside libs/storage that assert on stored rows (only hashes
// stored, a row expired by hand) without the entity classes, which stay internal to libs/storage.
import type { FindOptionsWhere, ObjectLiteral } from 'typeorm';
import type { Storage } from '../data-source.js';

/** The tables of the schema. */
export type TableName =
  | 'account'
  | 'account_document'
  | 'account_state'
  | 'enrollment_token'
  | 'home_node'
  | 'login_token'
  | 'matrix_access_token'
  | 'matrix_change'
  | 'matrix_change_horizon'
  | 'matrix_device_key'
  | 'matrix_media'
  | 'matrix_media_chunk'
  | 'matrix_room_event'
  | 'op'
  | 'op_evidence'
  | 'op_log_head'
  | 'peer_delivery'
  | 'room'
  | 'room_current_state'
  | 'room_current_state_delta'
  | 'room_event'
  | 'room_event_auth'
  | 'room_event_edge'
  | 'room_forward_extremity'
  | 'room_membership'
  | 'room_missing_prev'
  | 'room_receipt'
  | 'room_state_group'
  | 'room_state_group_entry'
  | 'room_txn'
  | 'to_device_held'
  | 'to_device_inbox'
  | 'to_device_outbox'
  | 'to_device_seen';

/** Columns by their entity property names (camelCase), e.g. `{ serverName: '...' }`. */
export type Row = Record<string, unknown>;

/** Reads and writes of one table, for tests. */
export interface TableProbe {
  /** The rows matching `where` (all rows without it). */
  rows(where?: Row): Promise<Row[]>;
  /** How many rows match `where`. */
  count(where?: Row): Promise<number>;
  /** Sets columns of the rows matching `where` (to age a token, say). */
  update(where: Row, set: Row): Promise<void>;
}

/** The probe of one table of an open Storage. */
export function table(storage: Storage, name: TableName): TableProbe {
  // TypeORM finds an entity's metadata by its table name, so no entity class is needed here.
  const repo = () => storage.dataSource.getRepository<ObjectLiteral>(name);
  const match = (where: Row) => where as FindOptionsWhere<ObjectLiteral>;
  return {
    rows: (where) => (where === undefined ? repo().find() : repo().findBy(match(where))),
    count: (where) => (where === undefined ? repo().count() : repo().countBy(match(where))),
    update: async (where, set) => {
      await repo().update(match(where), set);
    },
  };
}
