import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Summaries of lazy namespaces (issue 16, key backup `count`/`etag` without reading every key): per account,
 * namespace and group, the count of live rows and the XOR of their hashes. No backfill: a group without a row is
 * computed from `account_state` the first time it is written or read. See docs/decisions.md, "Key backup summary".
 */
export class StateSummary1795524600000 implements MigrationInterface {
  name = 'StateSummary1795524600000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "account_state_summary" ("account" character(64) NOT NULL, "namespace" character varying(32) NOT NULL, "group_key" character varying(255) NOT NULL, "count" bigint NOT NULL, "digest" bytea NOT NULL, CONSTRAINT "PK_cb640fff720c9a480f52f18b010" PRIMARY KEY ("account", "namespace", "group_key"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "account_state_summary" ADD CONSTRAINT "account_state_summary_account_fk" FOREIGN KEY ("account") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "account_state_summary" DROP CONSTRAINT "account_state_summary_account_fk"`);
    await queryRunner.query(`DROP TABLE "account_state_summary"`);
  }
}
