import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * To-device messages (issue 16): the inbox of the devices hosted here, the stream position counter, the messages
 * already taken (deduplication) and the durable outbox of `m.direct_to_device` EDUs owed to other homes. See
 * docs/decisions.md, "To-device messages".
 */
export class ToDevice1795524300000 implements MigrationInterface {
  name = 'ToDevice1795524300000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "to_device_inbox" ("stream_id" bigint NOT NULL, "server_name" character(64) NOT NULL, "device_id" character varying(255) NOT NULL, "sender" character varying(255) NOT NULL, "sender_device" character varying(255) NOT NULL, "type" character varying(255) NOT NULL, "content" text NOT NULL, CONSTRAINT "PK_e8918bd3d0c9cf8c3f89b1b4117" PRIMARY KEY ("stream_id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "to_device_inbox_sender_idx" ON "to_device_inbox"  ("server_name", "device_id", "sender", "sender_device") `,
    );
    await queryRunner.query(
      `CREATE INDEX "to_device_inbox_device_idx" ON "to_device_inbox"  ("server_name", "device_id", "stream_id") `,
    );
    await queryRunner.query(
      `CREATE TABLE "to_device_stream" ("id" smallint NOT NULL, "position" bigint NOT NULL, CONSTRAINT "PK_e8fc79b78029990cb11a3ddf7c6" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "to_device_seen" ("origin" character(64) NOT NULL, "message_id" character varying(255) NOT NULL, "server_name" character(64) NOT NULL, "device_id" character varying(255) NOT NULL, "received_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_13652f59de65f5cfac1ed063c3f" PRIMARY KEY ("origin", "message_id", "server_name", "device_id"))`,
    );
    await queryRunner.query(`CREATE INDEX "to_device_seen_at_idx" ON "to_device_seen"  ("received_at") `);
    await queryRunner.query(
      `CREATE TABLE "to_device_outbox" ("id" bigint NOT NULL, "destination" character varying(128) NOT NULL, "recipient" character(64) NOT NULL, "origin" character(64) NOT NULL, "edu" text NOT NULL, CONSTRAINT "PK_fb00a72b583c01ad7bbd013d084" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "to_device_outbox_destination_idx" ON "to_device_outbox"  ("destination", "id") `,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."to_device_outbox_destination_idx"`);
    await queryRunner.query(`DROP TABLE "to_device_outbox"`);
    await queryRunner.query(`DROP INDEX "public"."to_device_seen_at_idx"`);
    await queryRunner.query(`DROP TABLE "to_device_seen"`);
    await queryRunner.query(`DROP TABLE "to_device_stream"`);
    await queryRunner.query(`DROP INDEX "public"."to_device_inbox_device_idx"`);
    await queryRunner.query(`DROP INDEX "public"."to_device_inbox_sender_idx"`);
    await queryRunner.query(`DROP TABLE "to_device_inbox"`);
  }
}
