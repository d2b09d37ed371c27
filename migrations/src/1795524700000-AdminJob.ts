import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Jobs an operator starts through the admin API (`admin_job`: a forced resync), with their state and progress. */
export class AdminJob1795524700000 implements MigrationInterface {
  name = 'AdminJob1795524700000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "admin_job" ("id" character varying(64) NOT NULL, "kind" character varying(64) NOT NULL, "target" character varying(255) NOT NULL, "state" character varying(16) NOT NULL, "params" jsonb NOT NULL DEFAULT '{}', "progress" jsonb NOT NULL DEFAULT '{}', "error" text, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "started_at" TIMESTAMP WITH TIME ZONE, "finished_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "admin_job_pkey" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "admin_job_target_idx" ON "admin_job" ("target") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."admin_job_target_idx"`);
    await queryRunner.query(`DROP TABLE "admin_job"`);
  }
}
