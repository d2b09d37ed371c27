import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Rooms an operator blocked (`room_block`): no user hosted here may join them or be invited into them. */
export class RoomBlock1795525260000 implements MigrationInterface {
  name = 'RoomBlock1795525260000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "room_block" ("room_id" character varying(255) NOT NULL, "reason" text NOT NULL, "blocked_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "room_block_pkey" PRIMARY KEY ("room_id"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "room_block"`);
  }
}
