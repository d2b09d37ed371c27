import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The admin API's audit log (`admin_audit`: who did what to which target, and why), and the account states an
 * operator sets (`deactivated`, `taken_down`) beside `active` and `suspended`. Forward-only: `ADD VALUE` cannot be
 * undone in PostgreSQL, so `down` leaves the enum values in place.
 */
export class AdminAudit1795523200000 implements MigrationInterface {
  name = 'AdminAudit1795523200000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TYPE "public"."account_status" ADD VALUE IF NOT EXISTS 'deactivated'`);
    await queryRunner.query(`ALTER TYPE "public"."account_status" ADD VALUE IF NOT EXISTS 'taken_down'`);
    await queryRunner.query(
      `CREATE TABLE "admin_audit" ("id" BIGSERIAL NOT NULL, "action" character varying(64) NOT NULL, "target" character varying(255) NOT NULL, "reason" text NOT NULL, "detail" jsonb NOT NULL DEFAULT '{}', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "admin_audit_pkey" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "admin_audit_target_idx" ON "admin_audit" ("target") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."admin_audit_target_idx"`);
    await queryRunner.query(`DROP TABLE "admin_audit"`);
  }
}
