import { MigrationInterface, QueryRunner } from 'typeorm';

export class OpLogHead1795517405285 implements MigrationInterface {
  name = 'OpLogHead1795517405285';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "op_log_head" ("account" character(64) NOT NULL, "origin" character varying(128) NOT NULL, "seq" bigint NOT NULL, "digest" bytea NOT NULL, CONSTRAINT "PK_7ec8fdf4c8c622c8c30d4b2991d" PRIMARY KEY ("account", "origin"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "op_log_head" ADD CONSTRAINT "op_log_head_account_fk" FOREIGN KEY ("account") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    // Backfill from the op log: the head seq is the gapless max, the digest the XOR of slot hashes.
    // (PostgreSQL has no XOR aggregate over bytea, so the XOR is done here, one origin at a time.)
    const origins: Array<{ account: string; origin: string }> = await queryRunner.query(
      `SELECT DISTINCT "account", "origin" FROM "op"`,
    );
    for (const { account, origin } of origins) {
      const rows: Array<{ seq: string; hash: Buffer }> = await queryRunner.query(
        `SELECT "seq", "hash" FROM "op" WHERE "account" = $1 AND "origin" = $2 ORDER BY "seq"`,
        [account, origin],
      );
      const digest = Buffer.alloc(32);
      for (const row of rows) for (let i = 0; i < 32; i++) digest[i]! ^= row.hash[i]!;
      await queryRunner.query(
        `INSERT INTO "op_log_head" ("account", "origin", "seq", "digest") VALUES ($1, $2, $3, $4)`,
        [account, origin, rows[rows.length - 1]!.seq, digest],
      );
    }
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "op_log_head" DROP CONSTRAINT "op_log_head_account_fk"`);
    await queryRunner.query(`DROP TABLE "op_log_head"`);
  }
}
