import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The content repository of a home: media descriptions and their content in chunks (`matrix_media*`). */
export class MatrixMedia1795522500000 implements MigrationInterface {
  name = 'MatrixMedia1795522500000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "matrix_media" ("server_name" character varying(255) NOT NULL, "media_id" character varying(255) NOT NULL, "uploader" character varying(255) NOT NULL, "content_type" character varying(255) NOT NULL, "file_name" character varying(255), "size" bigint, "unused_expires_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "matrix_media_pkey" PRIMARY KEY ("server_name", "media_id"))`,
    );
    await queryRunner.query(`CREATE INDEX "matrix_media_uploader_idx" ON "matrix_media" ("uploader") `);
    await queryRunner.query(
      `CREATE TABLE "matrix_media_chunk" ("server_name" character varying(255) NOT NULL, "media_id" character varying(255) NOT NULL, "seq" integer NOT NULL, "bytes" bytea NOT NULL, CONSTRAINT "matrix_media_chunk_pkey" PRIMARY KEY ("server_name", "media_id", "seq"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "matrix_media_chunk" ADD CONSTRAINT "matrix_media_chunk_media_fk" FOREIGN KEY ("server_name", "media_id") REFERENCES "matrix_media"("server_name","media_id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "matrix_media_chunk" DROP CONSTRAINT "matrix_media_chunk_media_fk"`);
    await queryRunner.query(`DROP TABLE "matrix_media_chunk"`);
    await queryRunner.query(`DROP INDEX "public"."matrix_media_uploader_idx"`);
    await queryRunner.query(`DROP TABLE "matrix_media"`);
  }
}
