// `npm run migration:run`: applies pending migrations to DATABASE_URL, or to the embedded database in DATA_DIR.
import { openStorage, redactDatabaseUrl } from '../data-source.js';

const databaseUrl = process.env['DATABASE_URL'] || undefined;
const dataDir = process.env['DATA_DIR'] || './data';
try {
  const storage = await openStorage({
    databaseUrl,
    dataDir,
    onProgress: (message) => console.log(message),
  });
  const where = databaseUrl ? redactDatabaseUrl(databaseUrl) : `${dataDir}/db (embedded)`;
  console.log(
    storage.appliedMigrations.length > 0
      ? `Applied ${storage.appliedMigrations.length} migration(s) to ${where}: ${storage.appliedMigrations.join(', ')}`
      : `No pending migrations on ${where}.`,
  );
  await storage.close();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}
