import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Bounds of the Matrix change stream: an index to drop a key's older entries when it changes again, and the
 * horizon up to which an account's stream was pruned (a `since` before it is answered as "everything changed").
 */
export class MatrixChangeBounds1795520500000 implements MigrationInterface {
  name = 'MatrixChangeBounds1795520500000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX "matrix_change_key_idx" ON "matrix_change"  ("server_name", "key") `);
    await queryRunner.query(
      `CREATE TABLE "matrix_change_horizon" ("server_name" character(64) NOT NULL, "pruned_through" bigint NOT NULL, CONSTRAINT "matrix_change_horizon_pkey" PRIMARY KEY ("server_name"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "matrix_change_horizon" ADD CONSTRAINT "matrix_change_horizon_account_fk" FOREIGN KEY ("server_name") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "matrix_change_horizon" DROP CONSTRAINT "matrix_change_horizon_account_fk"`);
    await queryRunner.query(`DROP TABLE "matrix_change_horizon"`);
    await queryRunner.query(`DROP INDEX "public"."matrix_change_key_idx"`);
  }
}
