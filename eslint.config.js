import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import {
  MAY_IMPORT,
  REPOSITORIES_ONLY,
  REPOSITORIES_ONLY_SYNTAX,
  restrictedPatterns,
} from './scripts/package-boundaries.js';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'data/**', 'bench/results/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Package boundaries: what each package's sources may import (tests and testing helpers are exempt).
  ...Object.keys(MAY_IMPORT).map((pkg) => ({
    files: [`${pkg}/src/**/*.ts`],
    ignores: ['**/*.test.ts', '**/*.test-suite.ts', '**/testing/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: restrictedPatterns(pkg) }],
      ...(REPOSITORIES_ONLY.includes(pkg) ? { 'no-restricted-syntax': ['error', ...REPOSITORIES_ONLY_SYNTAX] } : {}),
    },
  })),
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: Object.fromEntries(
        [
          'process',
          'console',
          'URL',
          'TextEncoder',
          'TextDecoder',
          'Buffer',
          'setTimeout',
          'clearTimeout',
          'setInterval',
          'clearInterval',
          'structuredClone',
          'performance',
          'fetch',
          'AbortController',
          'AbortSignal',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
);
