import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Federation between homes: the durable outbox (an event owed to a destination home, until it takes it), the
 * fan-out's cursor over the timeline stream, and the verified account documents of other accounts. The scheme
 * is in docs/decisions.md, "Room federation".
 */
export class RoomFederation1795523500000 implements MigrationInterface {
  name = 'RoomFederation1795523500000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "room_outbox" ("destination" character varying(128) NOT NULL, "event_id" character varying(255) NOT NULL, "stream_ordering" bigint NOT NULL, "origin" character(64) NOT NULL, CONSTRAINT "PK_f569e9bddbeec524c9ded982436" PRIMARY KEY ("destination", "event_id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "room_outbox_order_idx" ON "room_outbox"  ("destination", "stream_ordering") `,
    );
    await queryRunner.query(
      `CREATE TABLE "room_fanout_cursor" ("id" smallint NOT NULL, "position" bigint NOT NULL, CONSTRAINT "PK_7d435cfbdf543483ff463e25d76" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "foreign_account_document" ("server_name" character(64) NOT NULL, "seq" bigint NOT NULL, "document" text NOT NULL, "fetched_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_e6f66afaaebca3230b990538cc2" PRIMARY KEY ("server_name"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "foreign_account_document"`);
    await queryRunner.query(`DROP TABLE "room_fanout_cursor"`);
    await queryRunner.query(`DROP INDEX "public"."room_outbox_order_idx"`);
    await queryRunner.query(`DROP TABLE "room_outbox"`);
  }
}
