import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Filters Matrix clients store on a home (`POST /user/{userId}/filter`). */
export class MatrixFilter1795521500000 implements MigrationInterface {
  name = 'MatrixFilter1795521500000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "matrix_filter" ("server_name" character(64) NOT NULL, "filter_id" character varying(64) NOT NULL, "filter" jsonb NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "matrix_filter_pkey" PRIMARY KEY ("server_name", "filter_id"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "matrix_filter" ADD CONSTRAINT "matrix_filter_account_fk" FOREIGN KEY ("server_name") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "matrix_filter" DROP CONSTRAINT "matrix_filter_account_fk"`);
    await queryRunner.query(`DROP TABLE "matrix_filter"`);
  }
}
