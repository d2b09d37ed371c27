import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Finding the accounts that name a home (a home connects: which of its accounts does this server host?) searched
 * every stored document with `document->'homes' @> …`, a scan of the whole table per connection (issue 14: 2 to 17 s
 * per connection with many accounts). A GIN index on the homes array answers the containment query.
 */
export class DocumentHomesIndex1795524800000 implements MigrationInterface {
  name = 'DocumentHomesIndex1795524800000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "account_document_homes_idx" ON "account_document" USING gin ((document -> 'homes') jsonb_path_ops)`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "account_document_homes_idx"`);
  }
}
