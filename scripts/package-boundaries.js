// The packages of the repository and what each may import: the one table behind the eslint rule
// (eslint.config.js) and the import-boundary test (test/package-boundaries.test.ts). docs/architecture.md
// draws it. A package not listed here may import no other of ours.

/** Workspace packages (`@polyhome/<name>`) each package's sources may import. */
export const MAY_IMPORT = {
  'libs/identity': [],
  'libs/sync': ['identity'],
  'libs/p2p': ['identity', 'sync'],
  'libs/queue': [],
  migrations: [],
  'libs/storage': ['identity', 'sync', 'migrations'],
  'libs/matrix': ['identity', 'sync'],
  'libs/home': ['identity', 'sync', 'p2p', 'queue', 'matrix'],
  'libs/rooms': ['identity', 'sync', 'p2p', 'queue', 'matrix', 'home'],
  'apps/server': ['identity', 'sync', 'p2p', 'queue', 'storage', 'matrix', 'home', 'rooms'],
  'apps/node': ['identity', 'sync', 'p2p', 'queue', 'storage', 'matrix', 'home', 'rooms'],
};

/** Every workspace package name. */
export const PACKAGES = [
  'identity',
  'sync',
  'p2p',
  'queue',
  'migrations',
  'storage',
  'matrix',
  'home',
  'rooms',
  'server',
  'node',
];

/** Packages that must stay framework-free: no NestJS, no TypeORM, no database driver. */
export const FRAMEWORK_FREE = ['libs/identity', 'libs/sync', 'libs/p2p', 'libs/queue', 'libs/home', 'libs/rooms'];

/** Module specifiers a framework-free package may not import. */
export const FRAMEWORK_MODULES = [
  '@nestjs/*',
  'typeorm',
  'typeorm/*',
  'pg',
  '@electric-sql/pglite',
  '@electric-sql/pglite/*',
];

/** The `no-restricted-imports` patterns of one package's sources. */
export function restrictedPatterns(pkg) {
  const allowed = new Set(MAY_IMPORT[pkg] ?? []);
  const patterns = [
    {
      group: PACKAGES.filter((p) => !allowed.has(p) && `libs/${p}` !== pkg && `apps/${p}` !== pkg && p !== pkg).flatMap(
        (p) => [`@polyhome/${p}`, `@polyhome/${p}/*`],
      ),
      message: `${pkg} may import only ${[...allowed].map((p) => `@polyhome/${p}`).join(', ') || 'no other package of ours'} (scripts/package-boundaries.js, docs/architecture.md).`,
    },
    {
      group: ['**/apps/**', '**/libs/**'],
      message: 'Import another package by its name (@polyhome/...), never by path.',
    },
  ];
  if (FRAMEWORK_FREE.includes(pkg)) {
    patterns.push({
      group: FRAMEWORK_MODULES,
      message: `${pkg} is framework-free: no NestJS, TypeORM or database driver.`,
    });
  }
  return patterns;
}
