import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Bounds of to-device messages (issue 16): when inbox and outbox rows were stored (expiry by a periodic sweep),
 * the sender device and message count of an outbox row (the per sender device cap on what waits for other homes),
 * and `to_device_held`, messages for a device not known here yet (its `device.put` has not replicated), held until
 * it appears or they expire. See docs/decisions.md, "To-device gaps closed".
 */
export class ToDeviceBounds1795524400000 implements MigrationInterface {
  name = 'ToDeviceBounds1795524400000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "to_device_inbox" ADD "received_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()`,
    );
    await queryRunner.query(`CREATE INDEX "to_device_inbox_at_idx" ON "to_device_inbox"  ("received_at") `);
    await queryRunner.query(`ALTER TABLE "to_device_outbox" ADD "sender" character varying(255) NOT NULL DEFAULT ''`);
    await queryRunner.query(
      `ALTER TABLE "to_device_outbox" ADD "sender_device" character varying(255) NOT NULL DEFAULT ''`,
    );
    await queryRunner.query(`ALTER TABLE "to_device_outbox" ADD "messages" integer NOT NULL DEFAULT 1`);
    await queryRunner.query(
      `ALTER TABLE "to_device_outbox" ADD "received_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()`,
    );
    await queryRunner.query(
      `CREATE INDEX "to_device_outbox_sender_idx" ON "to_device_outbox"  ("sender", "sender_device") `,
    );
    await queryRunner.query(`CREATE INDEX "to_device_outbox_at_idx" ON "to_device_outbox"  ("received_at") `);
    await queryRunner.query(
      `CREATE TABLE "to_device_held" ("id" bigint NOT NULL, "server_name" character(64) NOT NULL, "device_id" character varying(255) NOT NULL, "user_id" character varying(255) NOT NULL, "origin" character(64) NOT NULL, "sender" character varying(255) NOT NULL, "sender_device" character varying(255) NOT NULL, "type" character varying(255) NOT NULL, "message_id" character varying(255) NOT NULL, "content" text NOT NULL, "received_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_to_device_held_id" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "to_device_held_device_idx" ON "to_device_held"  ("server_name", "device_id", "id") `,
    );
    await queryRunner.query(
      `CREATE INDEX "to_device_held_sender_idx" ON "to_device_held"  ("server_name", "sender", "sender_device") `,
    );
    await queryRunner.query(`CREATE INDEX "to_device_held_at_idx" ON "to_device_held"  ("received_at") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."to_device_held_at_idx"`);
    await queryRunner.query(`DROP INDEX "public"."to_device_held_sender_idx"`);
    await queryRunner.query(`DROP INDEX "public"."to_device_held_device_idx"`);
    await queryRunner.query(`DROP TABLE "to_device_held"`);
    await queryRunner.query(`DROP INDEX "public"."to_device_outbox_at_idx"`);
    await queryRunner.query(`DROP INDEX "public"."to_device_outbox_sender_idx"`);
    await queryRunner.query(`ALTER TABLE "to_device_outbox" DROP COLUMN "received_at"`);
    await queryRunner.query(`ALTER TABLE "to_device_outbox" DROP COLUMN "messages"`);
    await queryRunner.query(`ALTER TABLE "to_device_outbox" DROP COLUMN "sender_device"`);
    await queryRunner.query(`ALTER TABLE "to_device_outbox" DROP COLUMN "sender"`);
    await queryRunner.query(`DROP INDEX "public"."to_device_inbox_at_idx"`);
    await queryRunner.query(`ALTER TABLE "to_device_inbox" DROP COLUMN "received_at"`);
  }
}
