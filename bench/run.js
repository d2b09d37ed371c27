// Benchmark runner: `npm run bench` runs every suite, `npm run bench -- identity` runs one.
// Each suite in bench/suites/<name>.js exports `description` and `run(ctx)`, which returns rows
// { figure, value, unit, reference? } and reports progress through ctx.progress(message).
// Results are printed as a table and written to bench/results/<time>-<suites>.json with the machine, the versions,
// the commit, and the machine's 1-minute load average during each suite (sampled every 10 s): on a shared machine
// every figure depends on what else ran, so the load goes with the figures.
import { execFileSync } from 'node:child_process';
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

/** The 1-minute load average, sampled every 10 s while `work` runs: { min, mean, max, samples }. */
async function underLoad(work) {
  const samples = [os.loadavg()[0]];
  const timer = setInterval(() => samples.push(os.loadavg()[0]), 10_000);
  try {
    return { value: await work(), load: summary(samples) };
  } finally {
    clearInterval(timer);
    samples.push(os.loadavg()[0]);
  }
}
const summary = (samples) => ({
  min: Math.min(...samples),
  mean: Number((samples.reduce((a, b) => a + b, 0) / samples.length).toFixed(2)),
  max: Math.max(...samples),
  samples: samples.length,
});

function commit() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: here,
      encoding: 'utf8',
    });
    return dirty.trim() === '' ? head : `${head} with uncommitted changes`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

const results = [];
for (const name of suites) {
  const suite = await import(path.join(here, 'suites', `${name}.js`));
  process.stderr.write(`\n[${name}] ${suite.description ?? ''}\n`);
  const started = Date.now();
  const { value: rows, load } = await underLoad(() =>
    suite.run({
      progress: (message) => process.stderr.write(`  [${name}] ${message}\n`),
    }),
  );
  results.push({ suite: name, seconds: (Date.now() - started) / 1000, load, rows });
  process.stderr.write(
    `  [${name}] done in ${((Date.now() - started) / 1000).toFixed(0)} s; load average ${load.min.toFixed(1)} to ${load.max.toFixed(1)} (mean ${load.mean})\n`,
  );
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
const loads = results.map((r) => r.load);
const load = {
  min: Math.min(...loads.map((l) => l.min)),
  max: Math.max(...loads.map((l) => l.max)),
  mean: Number(
    (loads.reduce((a, l) => a + l.mean * l.samples, 0) / loads.reduce((a, l) => a + l.samples, 0)).toFixed(2),
  ),
};
console.log(
  `Load average (1 min) during the run: ${load.min.toFixed(1)} to ${load.max.toFixed(1)}, mean ${load.mean}, on ${os.cpus().length} cores`,
);
const report = {
  at: new Date().toISOString(),
  command: `npm run bench${wanted.length > 0 ? ` -- ${wanted.join(' ')}` : ''}`,
  env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_'))),
  commit: commit(),
  machine,
  load,
  versions: await versions(),
  results,
};
await mkdir(path.join(here, 'results'), { recursive: true });
const file = path.join(here, 'results', `${report.at.replace(/[:.]/g, '-')}-${suites.join('+')}.json`);
await writeFile(file, JSON.stringify(report, null, 2) + '\n');
console.log(`Results written to ${path.relative(process.cwd(), file)}`);
