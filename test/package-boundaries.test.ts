// The import boundaries between packages (scripts/package-boundaries.js), checked on the sources as they are:
// each package imports only the packages it may, framework-free packages import no NestJS, TypeORM or
// database driver, no package reaches into another by path, the apps reach the database only through the
// repositories of @polyhome/storage (no TypeORM, no driver, no entity, no DataSource), and the eslint rule
// is the same table.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import * as storage from '@polyhome/storage';
import { FRAMEWORK_FREE, MAY_IMPORT, REPOSITORIES_ONLY } from '../scripts/package-boundaries.js';

const ROOT = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'testing' || name === 'node_modules' ? [] : sources(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

describe('package boundaries', () => {
  const packages = Object.keys(MAY_IMPORT) as Array<keyof typeof MAY_IMPORT>;

  it('every package imports only the packages it may', () => {
    const violations: string[] = [];
    let checked = 0;
    for (const pkg of packages) {
      const allowed = new Set<string>(MAY_IMPORT[pkg]);
      for (const file of sources(join(ROOT, pkg, 'src'))) {
        checked++;
        for (const spec of specifiers(file)) {
          const ours = /^@polyhome\/([a-z0-9]+)/.exec(spec)?.[1];
          if (ours !== undefined && !allowed.has(ours)) violations.push(`${relative(ROOT, file)}: ${spec}`);
          if (/(^|\/)(apps|libs)\//.test(spec)) violations.push(`${relative(ROOT, file)}: ${spec} (by path)`);
          if (FRAMEWORK_FREE.includes(pkg) && /^(@nestjs\/|typeorm($|\/)|pg$|@electric-sql\/pglite)/.test(spec)) {
            violations.push(`${relative(ROOT, file)}: ${spec} (framework-free package)`);
          }
          if (REPOSITORIES_ONLY.includes(pkg) && /^(typeorm($|\/)|pg$|@electric-sql\/pglite)/.test(spec)) {
            violations.push(`${relative(ROOT, file)}: ${spec} (repositories only)`);
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(violations).toEqual([]);
  });

  it('the eslint rule refuses NestJS and TypeORM in libs/home, and libs/home in libs/sync', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    const home = await eslint.calculateConfigForFile(join(ROOT, 'libs/home/src/home.ts'));
    const homeRule = JSON.stringify(home.rules?.['no-restricted-imports']);
    expect(homeRule).toContain('@nestjs/*');
    expect(homeRule).toContain('typeorm');
    expect(homeRule).toContain('@polyhome/storage');
    const sync = await eslint.calculateConfigForFile(join(ROOT, 'libs/sync/src/index.ts'));
    expect(JSON.stringify(sync.rules?.['no-restricted-imports'])).toContain('@polyhome/home');
  });

  it('the apps reach the database only through repositories: no entity exported, no DataSource used', async () => {
    expect(Object.keys(storage).filter((name) => /Entity$|^ENTITIES$/.test(name))).toEqual([]);
    expect(storage.createRepositories).toBeTypeOf('function');
    const violations: string[] = [];
    for (const pkg of REPOSITORIES_ONLY) {
      for (const file of sources(join(ROOT, pkg, 'src'))) {
        if (/\.dataSource\b|getRepository\(/.test(readFileSync(file, 'utf8'))) violations.push(relative(ROOT, file));
      }
    }
    expect(violations).toEqual([]);
    const eslint = new ESLint({ cwd: ROOT });
    const server = await eslint.calculateConfigForFile(join(ROOT, 'apps/server/src/accounts/accounts.service.ts'));
    expect(JSON.stringify(server.rules?.['no-restricted-imports'])).toContain('typeorm');
    expect(JSON.stringify(server.rules?.['no-restricted-syntax'])).toContain('dataSource');
    const [refused] = await eslint.lintText(
      "import { DataSource } from 'typeorm';\nexport const x = (s: { dataSource: DataSource }) => s.dataSource;\n",
      {
        filePath: join(ROOT, 'apps/node/src/context.ts'),
      },
    );
    expect(refused?.messages.map((m) => m.ruleId).sort()).toEqual(['no-restricted-imports', 'no-restricted-syntax']);
  });
});
