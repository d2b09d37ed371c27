import { MigrationInterface, QueryRunner } from 'typeorm';

export class ReplicatedState1795516075902 implements MigrationInterface {
  name = 'ReplicatedState1795516075902';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "account_state" ("account" character(64) NOT NULL, "namespace" character varying(32) NOT NULL, "key" character varying(255) NOT NULL, "lamport" bigint NOT NULL, "origin" character varying(128) NOT NULL, "seq" bigint NOT NULL, "deleted" boolean NOT NULL DEFAULT false, "value" jsonb, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_0a21f29c09f1c1e24cfcd8ed49e" PRIMARY KEY ("account", "namespace", "key"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "op_evidence" ("account" character(64) NOT NULL, "origin" character varying(128) NOT NULL, "seq" bigint NOT NULL, "hash" bytea NOT NULL, "content" jsonb NOT NULL, "received_from" character varying(128), "detected_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_5e1d283471bd64c62d56b4f8c13" PRIMARY KEY ("account", "origin", "seq", "hash"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "peer_delivery" ("account" character(64) NOT NULL, "peer_id" character varying(128) NOT NULL, "acked_vv" jsonb NOT NULL DEFAULT '{}', "last_connected_at" TIMESTAMP WITH TIME ZONE, "last_seen_at" TIMESTAMP WITH TIME ZONE, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_af96f316c22ce12e9aa8c2b9bc2" PRIMARY KEY ("account", "peer_id"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "account_state" ADD CONSTRAINT "account_state_account_fk" FOREIGN KEY ("account") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "op_evidence" ADD CONSTRAINT "op_evidence_account_fk" FOREIGN KEY ("account") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "peer_delivery" ADD CONSTRAINT "peer_delivery_account_fk" FOREIGN KEY ("account") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "peer_delivery" DROP CONSTRAINT "peer_delivery_account_fk"`);
    await queryRunner.query(`ALTER TABLE "op_evidence" DROP CONSTRAINT "op_evidence_account_fk"`);
    await queryRunner.query(`ALTER TABLE "account_state" DROP CONSTRAINT "account_state_account_fk"`);
    await queryRunner.query(`DROP TABLE "peer_delivery"`);
    await queryRunner.query(`DROP TABLE "op_evidence"`);
    await queryRunner.query(`DROP TABLE "account_state"`);
  }
}
