// Part of `npm run build`: makes the embedded database template of the current migrations (see
// pglite/template.ts), so the first `polyhome init` or server start on PGlite copies it instead of running
// initdb and every migration. Does nothing when it exists already.
import { prepareDatabaseTemplate } from '../data-source.js';

const started = Date.now();
try {
  const made = await prepareDatabaseTemplate((message) => console.log(`${message}…`));
  console.log(`Database template ready in ${Date.now() - started} ms: ${made}`);
} catch (err) {
  // Not fatal: without a template a new database is created with initdb, as before.
  console.error(
    `No database template (${err instanceof Error ? err.message : String(err)}); new databases run initdb.`,
  );
}
