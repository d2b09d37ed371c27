import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC, not esbuild: NestJS injection needs emitted decorator metadata.
export default defineConfig({
  plugins: [
    swc.vite({
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2022',
      },
      module: { type: 'es6' },
    }),
  ],
  resolve: {
    conditions: ['polyhome-source'],
  },
  ssr: {
    resolve: {
      conditions: ['polyhome-source'],
    },
  },
  test: {
    include: ['apps/*/src/**/*.test.ts', 'libs/*/src/**/*.test.ts', 'migrations/src/**/*.test.ts', 'test/**/*.test.ts'],
    // The soak runs alone after the rest (vitest.soak.config.ts): its figures mean something only on a machine
    // that runs nothing else.
    exclude: ['**/node_modules/**', '**/dist/**', 'test/soak/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
