// Prints a bench results file (bench/results/*.json) as the Markdown table the README's Performance section holds:
//
//   node bench/results-table.js bench/results/reference.json
import { readFile } from 'node:fs/promises';

const file = process.argv[2];
if (file === undefined) {
  console.error('usage: node bench/results-table.js bench/results/<run>.json');
  process.exit(2);
}
const report = JSON.parse(await readFile(file, 'utf8'));
const cell = (text) => String(text).replaceAll('|', '\\|').replaceAll('\n', ' ');
const value = (v) => (typeof v === 'number' ? String(Number(v.toPrecision(4))) : cell(v));
const lines = [];
if (report.load !== undefined) {
  lines.push(
    `Run at ${report.at}, commit ${report.commit ?? 'unknown'}: \`${report.command ?? 'npm run bench'}\`` +
      (report.env && Object.keys(report.env).length > 0
        ? ` with ${Object.entries(report.env)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`
        : '') +
      `; ${report.machine.cpus} cores, load average (1 min) ${report.load.min.toFixed(1)} to ${report.load.max.toFixed(1)}, mean ${report.load.mean}.`,
    '',
  );
}
lines.push('| Suite | Figure | Value | Unit | Reference (same run) |', '| --- | --- | ---: | --- | --- |');
for (const { suite, rows, load, seconds } of report.results) {
  for (const row of rows) {
    lines.push(
      `| ${suite} | \`${row.figure}\` | ${value(row.value)} | ${cell(row.unit ?? '')} | ${cell(row.reference ?? '')} |`,
    );
  }
  if (load !== undefined) {
    lines.push(
      `| ${suite} | (suite) | ${Math.round(seconds)} | s | load average ${load.min.toFixed(1)} to ${load.max.toFixed(1)}, mean ${load.mean} |`,
    );
  }
}
console.log(lines.join('\n'));
