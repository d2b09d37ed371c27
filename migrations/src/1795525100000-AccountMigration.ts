import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The account states of a migration to another provider: `migrating` (this server signed its departure and
 * serves the account no more while the new server home takes the key) and `migrated` (the account left: its
 * data here is kept as evidence, its key erased). Forward-only: `ADD VALUE` cannot be undone in PostgreSQL.
 */
export class AccountMigration1795525100000 implements MigrationInterface {
  name = 'AccountMigration1795525100000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TYPE "public"."account_status" ADD VALUE IF NOT EXISTS 'migrating'`);
    await queryRunner.query(`ALTER TYPE "public"."account_status" ADD VALUE IF NOT EXISTS 'migrated'`);
  }

  public async down(): Promise<void> {
    // Enum values stay (see the comment above).
  }
}
