import { MigrationInterface, QueryRunner } from 'typeorm';

export class Hosting1795518359777 implements MigrationInterface {
  name = 'Hosting1795518359777';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "enrollment_token" ("token_hash" character(64) NOT NULL, "id" character varying(32) NOT NULL, "uses_left" integer NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "UQ_8821640ead243852e41dca84b0c" UNIQUE ("id"), CONSTRAINT "PK_cb9d4ffaa654ff6bd6ab9537d15" PRIMARY KEY ("token_hash"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "login_token" ("token_hash" character(64) NOT NULL, "server_name" character(64) NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_133de4a942c082beefca6ff1b99" PRIMARY KEY ("token_hash"))`,
    );
    await queryRunner.query(`ALTER TABLE "account" ADD "password_hash" text`);
    await queryRunner.query(
      `ALTER TABLE "login_token" ADD CONSTRAINT "login_token_account_fk" FOREIGN KEY ("server_name") REFERENCES "account"("server_name") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "login_token" DROP CONSTRAINT "login_token_account_fk"`);
    await queryRunner.query(`ALTER TABLE "account" DROP COLUMN "password_hash"`);
    await queryRunner.query(`DROP TABLE "login_token"`);
    await queryRunner.query(`DROP TABLE "enrollment_token"`);
  }
}
