import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Local tables of the Matrix client API: access tokens (hashed), one-time and fallback keys, the /sync change stream, room events. */
export class MatrixClientApi1795519166001 implements MigrationInterface {
  name = 'MatrixClientApi1795519166001';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "matrix_access_token" ("token_hash" character(64) NOT NULL, "server_name" character(64) NOT NULL, "device_id" character varying(255) NOT NULL, "home" character varying(128) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_04f7dc0914c7efc60eb4b375c12" PRIMARY KEY ("token_hash"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "matrix_access_token_device_idx" ON "matrix_access_token"  ("server_name", "device_id") `,
    );
    await queryRunner.query(
      `CREATE TABLE "matrix_change" ("id" BIGSERIAL NOT NULL, "server_name" character(64) NOT NULL, "key" character varying(300) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_a17fcf54e7e272cb0221cfafe0f" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "matrix_change_account_idx" ON "matrix_change"  ("server_name", "id") `);
    await queryRunner.query(
      `CREATE TABLE "matrix_device_key" ("server_name" character(64) NOT NULL, "device_id" character varying(255) NOT NULL, "kind" character varying(16) NOT NULL, "key_id" character varying(255) NOT NULL, "algorithm" character varying(128) NOT NULL, "value" jsonb NOT NULL, "used" boolean NOT NULL DEFAULT false, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_6d4fc3b1832ec3af3eed542cbe0" PRIMARY KEY ("server_name", "device_id", "kind", "key_id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "matrix_room_event" ("event_id" character varying(255) NOT NULL, "server_name" character(64) NOT NULL, "room_id" character varying(255) NOT NULL, "event" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_f5c6761c1989f8bdcc7790dbba0" PRIMARY KEY ("event_id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "matrix_room_event_room_idx" ON "matrix_room_event"  ("server_name", "room_id") `,
    );
    await queryRunner.query(
      `ALTER TABLE "matrix_access_token" ADD CONSTRAINT "matrix_access_token_account_fk" FOREIGN KEY ("server_name") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "matrix_change" ADD CONSTRAINT "matrix_change_account_fk" FOREIGN KEY ("server_name") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "matrix_device_key" ADD CONSTRAINT "matrix_device_key_account_fk" FOREIGN KEY ("server_name") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "matrix_room_event" ADD CONSTRAINT "matrix_room_event_account_fk" FOREIGN KEY ("server_name") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "matrix_room_event" DROP CONSTRAINT "matrix_room_event_account_fk"`);
    await queryRunner.query(`ALTER TABLE "matrix_device_key" DROP CONSTRAINT "matrix_device_key_account_fk"`);
    await queryRunner.query(`ALTER TABLE "matrix_change" DROP CONSTRAINT "matrix_change_account_fk"`);
    await queryRunner.query(`ALTER TABLE "matrix_access_token" DROP CONSTRAINT "matrix_access_token_account_fk"`);
    await queryRunner.query(`DROP INDEX "public"."matrix_room_event_room_idx"`);
    await queryRunner.query(`DROP TABLE "matrix_room_event"`);
    await queryRunner.query(`DROP TABLE "matrix_device_key"`);
    await queryRunner.query(`DROP INDEX "public"."matrix_change_account_idx"`);
    await queryRunner.query(`DROP TABLE "matrix_change"`);
    await queryRunner.query(`DROP INDEX "public"."matrix_access_token_device_idx"`);
    await queryRunner.query(`DROP TABLE "matrix_access_token"`);
  }
}
