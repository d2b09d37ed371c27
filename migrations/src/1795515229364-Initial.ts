import { MigrationInterface, QueryRunner } from 'typeorm';

export class Initial1795515229364 implements MigrationInterface {
  name = 'Initial1795515229364';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TYPE "public"."account_custody" AS ENUM('hosted', 'self')`);
    await queryRunner.query(`CREATE TYPE "public"."account_status" AS ENUM('active', 'suspended')`);
    await queryRunner.query(
      `CREATE TABLE "account" ("server_name" character(64) NOT NULL, "user_id" character varying(160) NOT NULL, "custody" "public"."account_custody" NOT NULL, "sealed_root_key" bytea, "status" "public"."account_status" NOT NULL DEFAULT 'active', "doc_seq" bigint NOT NULL DEFAULT '0', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_272009ec44b76baa43c1b1c5fce" PRIMARY KEY ("server_name"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "account_user_id_key" ON "account"  ("user_id") `);
    await queryRunner.query(
      `CREATE TABLE "account_document" ("server_name" character(64) NOT NULL, "seq" bigint NOT NULL, "document" jsonb NOT NULL, "content_hash" bytea NOT NULL, "received_from" character varying(128), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_0c5b776d2769a5ec26d534c8209" PRIMARY KEY ("server_name", "seq"))`,
    );
    await queryRunner.query(`CREATE TYPE "public"."home_role" AS ENUM('server', 'client')`);
    await queryRunner.query(
      `CREATE TABLE "home_node" ("peer_id" character varying(128) NOT NULL, "public_key" bytea NOT NULL, "role" "public"."home_role" NOT NULL, "name" character varying(64) NOT NULL DEFAULT '', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "last_started_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_7fa7d4b7efed8b79ff66554f242" PRIMARY KEY ("peer_id"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "op" ("account" character(64) NOT NULL, "origin" character varying(128) NOT NULL, "seq" bigint NOT NULL, "lamport" bigint NOT NULL, "doc_seq" bigint NOT NULL, "ts" bigint NOT NULL, "kind" character varying(64) NOT NULL, "key" character varying(255) NOT NULL, "content" jsonb NOT NULL, "hash" bytea NOT NULL, "received_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_f809488d80c29e5d67e45615cc4" PRIMARY KEY ("account", "origin", "seq"))`,
    );
    await queryRunner.query(`CREATE INDEX "op_account_lamport_idx" ON "op"  ("account", "lamport") `);
    await queryRunner.query(`CREATE INDEX "op_account_kind_key_idx" ON "op"  ("account", "kind", "key") `);
    await queryRunner.query(
      `ALTER TABLE "account_document" ADD CONSTRAINT "account_document_account_fk" FOREIGN KEY ("server_name") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "op" ADD CONSTRAINT "op_account_fk" FOREIGN KEY ("account") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "op" DROP CONSTRAINT "op_account_fk"`);
    await queryRunner.query(`ALTER TABLE "account_document" DROP CONSTRAINT "account_document_account_fk"`);
    await queryRunner.query(`DROP INDEX "public"."op_account_kind_key_idx"`);
    await queryRunner.query(`DROP INDEX "public"."op_account_lamport_idx"`);
    await queryRunner.query(`DROP TABLE "op"`);
    await queryRunner.query(`DROP TABLE "home_node"`);
    await queryRunner.query(`DROP TYPE "public"."home_role"`);
    await queryRunner.query(`DROP TABLE "account_document"`);
    await queryRunner.query(`DROP INDEX "public"."account_user_id_key"`);
    await queryRunner.query(`DROP TABLE "account"`);
    await queryRunner.query(`DROP TYPE "public"."account_status"`);
    await queryRunner.query(`DROP TYPE "public"."account_custody"`);
  }
}
