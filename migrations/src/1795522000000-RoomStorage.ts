import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Matrix rooms (federation-format PDUs of room versions 10 and 11): events with their edges, outliers and
 * rejections, state groups (snapshots and bounded delta chains), forward extremities and gaps, the current state
 * with its change log per stream position, memberships by server, and client transaction ids. The scheme is in
 * docs/decisions.md, "Room storage".
 */
export class RoomStorage1795522000000 implements MigrationInterface {
  name = 'RoomStorage1795522000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "room" ("room_id" character varying(255) NOT NULL, "room_version" character varying(32) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_483751c0abab68ed1ac952ae920" PRIMARY KEY ("room_id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "room_event" ("event_id" character varying(255) COLLATE "C" NOT NULL, "room_id" character varying(255) NOT NULL, "pdu" text NOT NULL, "type" character varying(255) NOT NULL, "state_key" character varying(255), "sender" character varying(255) NOT NULL, "depth" bigint NOT NULL, "origin_server_ts" bigint NOT NULL, "outlier" boolean NOT NULL, "rejection_code" character varying(255), "rejection_message" text, "stream_ordering" bigint, "state_group_before" bigint, "state_group_after" bigint, CONSTRAINT "PK_82d224b1684ae42cffc028885cf" PRIMARY KEY ("event_id"))`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "room_event_stream_ordering_key" ON "room_event"  ("stream_ordering") `,
    );
    await queryRunner.query(`CREATE INDEX "room_event_stream_idx" ON "room_event"  ("room_id", "stream_ordering") `);
    await queryRunner.query(
      `CREATE INDEX "room_event_topological_idx" ON "room_event"  ("room_id", "depth", "event_id") `,
    );
    await queryRunner.query(
      `CREATE TABLE "room_event_edge" ("event_id" character varying(255) NOT NULL, "prev_event_id" character varying(255) NOT NULL, "room_id" character varying(255) NOT NULL, CONSTRAINT "PK_3c19ef8e410988bb434462c187a" PRIMARY KEY ("event_id", "prev_event_id"))`,
    );
    await queryRunner.query(`CREATE INDEX "room_event_edge_prev_idx" ON "room_event_edge"  ("prev_event_id") `);
    await queryRunner.query(
      `CREATE TABLE "room_event_auth" ("event_id" character varying(255) NOT NULL, "auth_event_id" character varying(255) NOT NULL, "room_id" character varying(255) NOT NULL, CONSTRAINT "PK_af21500e1abf7be0e0b0efc5b40" PRIMARY KEY ("event_id", "auth_event_id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "room_forward_extremity" ("room_id" character varying(255) NOT NULL, "event_id" character varying(255) NOT NULL, CONSTRAINT "PK_725b28a38a279a1880e1253aa3a" PRIMARY KEY ("room_id", "event_id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "room_missing_prev" ("room_id" character varying(255) NOT NULL, "event_id" character varying(255) NOT NULL, CONSTRAINT "PK_f6a58f774decd99ec39983f3e82" PRIMARY KEY ("room_id", "event_id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "room_state_group" ("id" BIGSERIAL NOT NULL, "room_id" character varying(255) NOT NULL, "prev_group" bigint, "delta_hops" integer NOT NULL, CONSTRAINT "PK_87bfdc8af7426fe4e8945159ebb" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "room_state_group_entry" ("state_group" bigint NOT NULL, "type" character varying(255) NOT NULL, "state_key" character varying(255) NOT NULL, "event_id" character varying(255), CONSTRAINT "PK_a93445fcc64f3c6951fe0b59822" PRIMARY KEY ("state_group", "type", "state_key"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "room_current_state" ("room_id" character varying(255) NOT NULL, "type" character varying(255) NOT NULL, "state_key" character varying(255) NOT NULL, "event_id" character varying(255) NOT NULL, CONSTRAINT "PK_3004925db655df9683c1a3fc3ba" PRIMARY KEY ("room_id", "type", "state_key"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "room_current_state_delta" ("room_id" character varying(255) NOT NULL, "stream_ordering" bigint NOT NULL, "type" character varying(255) NOT NULL, "state_key" character varying(255) NOT NULL, "event_id" character varying(255), CONSTRAINT "PK_ff1c905bf852c3cad9fc03dc794" PRIMARY KEY ("room_id", "stream_ordering", "type", "state_key"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "room_membership" ("room_id" character varying(255) NOT NULL, "user_id" character varying(255) NOT NULL, "server_name" character varying(255) NOT NULL, "membership" character varying(32) NOT NULL, "event_id" character varying(255) NOT NULL, "stream_ordering" bigint NOT NULL, CONSTRAINT "PK_3697f69d271cdfbcde6f9b0c44a" PRIMARY KEY ("room_id", "user_id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "room_membership_server_idx" ON "room_membership"  ("server_name", "room_id") `,
    );
    await queryRunner.query(
      `CREATE TABLE "room_txn" ("server_name" character(64) NOT NULL, "device_id" character varying(255) NOT NULL, "txn_id" character varying(255) NOT NULL, "event_id" character varying(255) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_d5ca220c9716e0ee9f55ba47298" PRIMARY KEY ("server_name", "device_id", "txn_id"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "room_event" ADD CONSTRAINT "room_event_room_fk" FOREIGN KEY ("room_id") REFERENCES "room"("room_id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "room_txn" ADD CONSTRAINT "room_txn_account_fk" FOREIGN KEY ("server_name") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "room_txn" DROP CONSTRAINT "room_txn_account_fk"`);
    await queryRunner.query(`ALTER TABLE "room_event" DROP CONSTRAINT "room_event_room_fk"`);
    await queryRunner.query(`DROP TABLE "room_txn"`);
    await queryRunner.query(`DROP INDEX "public"."room_membership_server_idx"`);
    await queryRunner.query(`DROP TABLE "room_membership"`);
    await queryRunner.query(`DROP TABLE "room_current_state_delta"`);
    await queryRunner.query(`DROP TABLE "room_current_state"`);
    await queryRunner.query(`DROP TABLE "room_state_group_entry"`);
    await queryRunner.query(`DROP TABLE "room_state_group"`);
    await queryRunner.query(`DROP TABLE "room_missing_prev"`);
    await queryRunner.query(`DROP TABLE "room_forward_extremity"`);
    await queryRunner.query(`DROP TABLE "room_event_auth"`);
    await queryRunner.query(`DROP INDEX "public"."room_event_edge_prev_idx"`);
    await queryRunner.query(`DROP TABLE "room_event_edge"`);
    await queryRunner.query(`DROP INDEX "public"."room_event_topological_idx"`);
    await queryRunner.query(`DROP INDEX "public"."room_event_stream_idx"`);
    await queryRunner.query(`DROP INDEX "public"."room_event_stream_ordering_key"`);
    await queryRunner.query(`DROP TABLE "room_event"`);
    await queryRunner.query(`DROP TABLE "room"`);
  }
}
