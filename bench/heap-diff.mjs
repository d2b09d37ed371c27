// Investigation helper (not a bench suite), with bench/probe-memory.mjs and bench/heap-retainers.mjs:
//   node bench/heap-diff.mjs idle.heapsnapshot active.heapsnapshot [top]
// Self size and count of the objects of two V8 heap snapshots by (node type, constructor name), the second minus the
// first, largest growth first.
import { readFileSync } from 'node:fs';

function aggregate(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const m = snap.snapshot.meta;
  const nf = m.node_fields;
  const N = nf.length;
  const types = m.node_types[0];
  const iType = nf.indexOf('type');
  const iName = nf.indexOf('name');
  const iSize = nf.indexOf('self_size');
  const nodes = snap.nodes;
  const strings = snap.strings;
  const agg = new Map();
  let total = 0;
  for (let i = 0; i < nodes.length; i += N) {
    const type = types[nodes[i + iType]];
    let name = strings[nodes[i + iName]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)';
    else if (type === 'number') name = '(number)';
    else if (type === 'code') name = '(code)';
    else if (type === 'array') name = `(array) ${name.length > 40 ? '' : name}`;
    else if (type === 'hidden') name = `(hidden) ${name.slice(0, 40)}`;
    else if (type === 'closure') name = `(closure) ${name.slice(0, 40)}`;
    else if (type === 'object shape') name = '(shape)';
    const key = `${type}\t${name.slice(0, 80)}`;
    const size = nodes[i + iSize];
    total += size;
    const e = agg.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += size;
    agg.set(key, e);
  }
  return { agg, total, nodeCount: nodes.length / N };
}

const [a, b] = [aggregate(process.argv[2]), aggregate(process.argv[3])];
const top = Number(process.argv[4] ?? 40);
console.log(
  `total self size: ${(a.total / 2 ** 20).toFixed(1)} MiB -> ${(b.total / 2 ** 20).toFixed(1)} MiB; nodes ${a.nodeCount} -> ${b.nodeCount}`,
);
const keys = new Set([...a.agg.keys(), ...b.agg.keys()]);
const rows = [...keys].map((k) => {
  const x = a.agg.get(k) ?? { count: 0, size: 0 };
  const y = b.agg.get(k) ?? { count: 0, size: 0 };
  return { k, dc: y.count - x.count, ds: y.size - x.size, c: y.count };
});
rows.sort((p, q) => q.ds - p.ds);
for (const r of rows.slice(0, top))
  console.log(`${(r.ds / 1024).toFixed(1).padStart(10)} KiB ${String(r.dc).padStart(8)} (${r.c})  ${r.k}`);
