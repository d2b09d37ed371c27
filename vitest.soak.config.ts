// The soak (test/soak): every attack at once against a server process and a client home, run alone after the
// other suites (`npm test` runs it last) so that what it prints is what the two homes did, not the rest of
// the suite. SOAK_SECONDS sets its length (60 by default).
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/soak/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
  },
});
