import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The last root-document equivocation seen for an account (`{ seq, digests, peer_id, seen_at }`), for its
 * admin: the root key signed two documents with one seq.
 */
export class DocumentEquivocation1795521000000 implements MigrationInterface {
  name = 'DocumentEquivocation1795521000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "account" ADD "document_equivocation" jsonb`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "account" DROP COLUMN "document_equivocation"`);
  }
}
