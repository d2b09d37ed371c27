import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Read receipts of rooms (`room_receipt`): the newest per room, type, user and thread, in a stream for /sync. */
export class RoomReceipts1795523000000 implements MigrationInterface {
  name = 'RoomReceipts1795523000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "room_receipt" ("room_id" character varying(255) NOT NULL, "receipt_type" character varying(64) NOT NULL, "user_id" character varying(255) NOT NULL, "thread_id" character varying(255) NOT NULL, "event_id" character varying(255) NOT NULL, "event_stream" bigint, "ts" bigint NOT NULL, "stream_id" bigint NOT NULL, CONSTRAINT "room_receipt_pkey" PRIMARY KEY ("room_id", "receipt_type", "user_id", "thread_id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "room_receipt_stream_key" ON "room_receipt" ("stream_id") `);
    await queryRunner.query(`CREATE INDEX "room_receipt_room_stream_idx" ON "room_receipt" ("room_id", "stream_id") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."room_receipt_room_stream_idx"`);
    await queryRunner.query(`DROP INDEX "public"."room_receipt_stream_key"`);
    await queryRunner.query(`DROP TABLE "room_receipt"`);
  }
}
