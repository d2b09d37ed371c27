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
  'libs/rooms': ['identity'],
  'libs/storage': ['identity', 'sync', 'rooms', 'migrations'],
  'libs/matrix': ['identity', 'sync', 'rooms'],
  'libs/home': ['identity', 'sync', 'rooms', 'p2p', 'queue', 'matrix'],
  'apps/server': ['identity', 'sync', 'p2p', 'queue', 'storage', 'matrix', 'home', 'rooms'],
  'apps/node': ['identity', 'sync', 'p2p', 'queue', 'storage', 'matrix', 'home', 'rooms'],
};

/** Every workspace package name. */
export const PACKAGES = [
  'identity',
  'rooms',
  'sync',
  'p2p',
  'queue',
  'migrations',
  'storage',
  'matrix',
  'home',
  'server',
  'node',
];

/** Packages that must stay framework-free: no NestJS, no TypeORM, no database driver. */
export const FRAMEWORK_FREE = ['libs/identity', 'libs/sync', 'libs/p2p', 'libs/queue', 'libs/home', 'libs/rooms'];

/** The ORM and the database drivers: only libs/storage (and migrations) touch them. */
export const DATABASE_MODULES = ['typeorm', 'typeorm/*', 'pg', '@electric-sql/pglite', '@electric-sql/pglite/*'];

/** Module specifiers a framework-free package may not import. */
export const FRAMEWORK_MODULES = ['@nestjs/*', ...DATABASE_MODULES];

/**
 * Packages that reach the database only through the repositories of @polyhome/storage (its factory
 * `createRepositories`): no ORM, no driver, no entity class (the package exports none), and no `dataSource`
 * of an opened Storage. The apps compose; SQL lives in the repository that owns the table.
 */
export const REPOSITORIES_ONLY = ['apps/server', 'apps/node'];

/** The `no-restricted-syntax` entries of a REPOSITORIES_ONLY package: no reaching for the DataSource. */
export const REPOSITORIES_ONLY_SYNTAX = [
  {
    selector: "MemberExpression[property.name='dataSource']",
    message:
      'The apps use the repositories of @polyhome/storage (createRepositories), never the DataSource (scripts/package-boundaries.js).',
  },
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
  } else if (REPOSITORIES_ONLY.includes(pkg)) {
    patterns.push({
      group: DATABASE_MODULES,
      message: `${pkg} reaches the database only through the repositories of @polyhome/storage: no TypeORM or database driver.`,
    });
  }
  return patterns;
}
