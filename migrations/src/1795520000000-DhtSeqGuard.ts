import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The DHT replay guard: the highest document seq of every account this node hosts or has looked up. */
export class DhtSeqGuard1795520000000 implements MigrationInterface {
  name = 'DhtSeqGuard1795520000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "dht_seq_guard" ("server_name" character(64) NOT NULL, "seq" bigint NOT NULL, CONSTRAINT "dht_seq_guard_pkey" PRIMARY KEY ("server_name"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "dht_seq_guard"`);
  }
}
