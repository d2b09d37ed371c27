// Benchmark runner: `npm run bench` runs every suite, `npm run bench -- identity` runs one.
// Each suite in bench/suites/<name>.js exports `description` and `run(ctx)`, which returns rows
// { figure, value, unit, reference? } and reports progress through ctx.progress(message).
// Results are printed as a table and written to bench/results/<time>-<suites>.json with the machine and versions.
import { readdir, writeFile, mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const available = (await readdir(path.join(here, 'suites')))
  .filter((f) => f.endsWith('.js'))
  .map((f) => f.slice(0, -3))
  .sort();
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length > 0) {
  console.error(`Unknown bench suite(s): ${unknown.join(', ')}. Available: ${available.join(', ')}.`);
  process.exit(2);
}
const suites = wanted.length > 0 ? wanted : available;

async function versions() {
  const names = [
    '@noble/curves',
    'libp2p',
    'typeorm',
    '@electric-sql/pglite',
    'pg',
    'bullmq',
    'ioredis',
    '@nestjs/core',
  ];
  const out = { node: process.version };
  for (const name of names) {
    try {
      const pkg = JSON.parse(await readFile(path.join(here, '..', 'node_modules', name, 'package.json'), 'utf8'));
      out[name] = pkg.version;
    } catch {
      out[name] = null;
    }
  }
  return out;
}

const results = [];
for (const name of suites) {
  const suite = await import(path.join(here, 'suites', `${name}.js`));
  process.stderr.write(`\n[${name}] ${suite.description ?? ''}\n`);
  const started = Date.now();
  const rows = await suite.run({
    progress: (message) => process.stderr.write(`  [${name}] ${message}\n`),
  });
  results.push({ suite: name, seconds: (Date.now() - started) / 1000, rows });
}

const table = [];
for (const { suite, rows } of results) {
  for (const row of rows) {
    table.push({
      suite,
      figure: row.figure,
      value: typeof row.value === 'number' ? Number(row.value.toPrecision(4)) : row.value,
      unit: row.unit,
      reference: row.reference ?? '',
    });
  }
}
console.table(table);

const machine = {
  cpus: os.cpus().length,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  platform: `${os.platform()} ${os.release()}`,
};
const report = { at: new Date().toISOString(), machine, versions: await versions(), results };
await mkdir(path.join(here, 'results'), { recursive: true });
const file = path.join(here, 'results', `${report.at.replace(/[:.]/g, '-')}-${suites.join('+')}.json`);
await writeFile(file, JSON.stringify(report, null, 2) + '\n');
console.log(`Results written to ${path.relative(process.cwd(), file)}`);
