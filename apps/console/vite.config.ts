// Builds the admin console into the server's dist, which serves it at /admin/ (no separate service).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  base: '/admin/',
  logLevel: 'warn',
  build: {
    outDir: path.join(here, '../server/dist/console'),
    emptyOutDir: true,
    // One small bundle; no source maps shipped to operators' browsers.
    sourcemap: false,
    target: 'es2022',
  },
});
