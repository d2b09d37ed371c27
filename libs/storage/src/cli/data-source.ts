// The DataSource the `typeorm` CLI loads for `npm run migration:generate` (PostgreSQL only, by design:
// migrations are generated against the production engine and then run unchanged on PGlite).
import { DataSource } from 'typeorm';
import { postgresDataSourceOptions } from '../data-source.js';

const url = process.env['DATABASE_URL'];
if (!url) {
  console.error(
    'DATABASE_URL is not set. Example: DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run migration:generate -- migrations/src/<Name>',
  );
  process.exit(2);
}

/** The PostgreSQL DataSource for the TypeORM CLI. */
export default new DataSource(postgresDataSourceOptions(url));
